/**
 * Charts GitHub draws inside Markdown with no image host: Mermaid `xychart-beta` blocks for the
 * learning curves (one line per revision) and per-class F1 (bars for the base, a line for the
 * head). Every series is titled for Mermaid's legend, and a caption names the colours too, for
 * renderers that draw no legend. Strings that reach a block (revision and class names) are
 * reduced to characters the Mermaid grammar cannot misread.
 */
import type { CurvePoint } from '../plots/templates.ts';

/** Series colours, in revision order (Vega's tableau10 blue and orange, as in `lockstep plots`). */
export const SERIES_COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#e45756'];
const COLOUR_NAMES = ['blue', 'orange', 'green', 'red'];

export interface ChartRevision {
  /** Label shown in the legend (`main`, `a1b2c3d`, `head`). */
  label: string;
  history?: { epochs: CurvePoint[]; best_epoch?: number };
  /** Class label → F1. */
  f1?: Record<string, number>;
}

/** A string safe inside a Mermaid double-quoted string: no quotes, brackets, newlines or markup. */
export function mermaidText(text: string, max = 40): string {
  const clean = text
    .replace(/[^\p{L}\p{N} ._:=/+(),-]/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return cut(clean, max) || '-';
}

/**
 * `text` in at most `max` characters, the last an ellipsis when anything was cut. Counted and cut
 * by code point, not UTF-16 unit: a letter outside the BMP (𠀀, 𝒜) is never halved.
 */
function cut(text: string, max: number): string {
  const points = Array.from(text);
  return points.length > max ? `${points.slice(0, max - 1).join('')}…` : text;
}

/**
 * {@link mermaidText} of each of `texts`, all distinct, so no two series (or x-axis categories)
 * of a chart read the same: texts that shorten alike keep their ends instead of their middles
 * (`feature/retrain-with-…-experiment-1`, `…-experiment-2`); any still alike, or alike from the
 * start, are numbered (`main (2)`).
 */
export function distinctTexts(texts: string[], max = 40): string[] {
  const full = texts.map((t) => mermaidText(t, Number.MAX_SAFE_INTEGER));
  const short = full.map((t) => mermaidText(t, max));
  const count = (xs: string[], x: string) => xs.filter((y) => y === x).length;
  const middle = (t: string) => {
    const points = Array.from(t);
    if (points.length <= max) return t;
    const tail = Math.min(Math.floor((max - 1) / 2), 16);
    const head = points.slice(0, max - 1 - tail).join('');
    return `${head.trimEnd()}…${points.slice(-tail).join('').trimStart()}`;
  };
  const ends = short.map((t, i) => (count(short, t) > 1 ? middle(full[i]!) : t));
  const seen = new Map<string, number>();
  const used = new Set<string>();
  return ends.map((t, i) => {
    // a name is kept as it is when it is the first of its kind and no other name is numbered into it
    if (!seen.has(t) && !used.has(t)) {
      seen.set(t, 1);
      used.add(t);
      return t;
    }
    for (let n = (seen.get(t) ?? 1) + 1; ; n++) {
      const suffix = ` (${n})`;
      const named = `${cut(t, max - suffix.length)}${suffix}`;
      if (used.has(named) || ends.includes(named, i + 1)) continue;
      seen.set(t, n);
      used.add(named);
      return named;
    }
  });
}

function num(x: number): string {
  return String(Math.round(x * 1e4) / 1e4);
}

function block(title: string, lines: string[], colours: number): string {
  const config = {
    xyChart: { showLegend: true },
    themeVariables: { xyChart: { plotColorPalette: SERIES_COLOURS.slice(0, colours).join(', ') } },
  };
  return [
    '```mermaid',
    `%%{init: ${JSON.stringify(config)}}%%`,
    'xychart-beta',
    `    title "${mermaidText(title, 80)}"`,
    ...lines.map((l) => `    ${l}`),
    '```',
  ].join('\n');
}

function caption(parts: string[]): string {
  return `<sub>${parts.join(' · ')}</sub>`;
}

/**
 * Validation accuracy per epoch, one line per revision (train accuracy when a revision has no
 * validation split). A run that stopped earlier is held at its last value, and the caption says
 * at which epoch it stopped. Undefined when no revision has a history.
 */
export function learningCurvesChart(revs: ChartRevision[]): string | undefined {
  // history.json is read from disk: an old or hand-written one may lack accuracy (a NaN would
  // break the block), so a revision is charted only when every epoch has a finite accuracy.
  const acc = (p: CurvePoint): number | undefined =>
    [p.val_acc, p.acc].find((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const withHistory = revs.filter(
    (r) => r.history?.epochs?.length && r.history.epochs.every((p) => acc(p) !== undefined),
  );
  if (withHistory.length === 0) return undefined;
  const epochs = Math.max(...withHistory.map((r) => r.history!.epochs.length));
  const notes: string[] = [];
  const names = distinctTexts(withHistory.map((r) => r.label));
  const lines = [
    `x-axis "epoch" [${Array.from({ length: epochs }, (_, i) => String(i + 1)).join(', ')}]`,
    'y-axis "validation accuracy" 0 --> 1',
  ];
  withHistory.forEach((r, i) => {
    const values = r.history!.epochs.map((p) => acc(p)!);
    const n = values.length;
    while (values.length < epochs) values.push(values[n - 1]!);
    lines.push(`line "${names[i]}" [${values.map(num).join(', ')}]`);
    const stop = n < epochs ? `, stopped at epoch ${n}` : '';
    const best = r.history!.best_epoch === undefined ? '' : `, best epoch ${r.history!.best_epoch}`;
    notes.push(`${COLOUR_NAMES[i % COLOUR_NAMES.length]}: ${names[i]}${best}${stop}`);
  });
  return `${block('Learning curves: validation accuracy per epoch', lines, withHistory.length)}\n${caption(notes)}`;
}

/**
 * F1 per class: bars for the first revision (the base), a line for each later one (the head),
 * so both stay visible where Mermaid would stack bars. Undefined without per-class F1.
 */
export function perClassF1Chart(revs: ChartRevision[]): string | undefined {
  const withF1 = revs.filter((r) => r.f1 && Object.keys(r.f1).length > 0);
  if (withF1.length === 0) return undefined;
  const labels = [...new Set(withF1.flatMap((r) => Object.keys(r.f1!)))];
  const names = distinctTexts(withF1.map((r) => r.label));
  const lines = [
    `x-axis [${distinctTexts(labels, 24)
      .map((l) => `"${l}"`)
      .join(', ')}]`,
    'y-axis "F1" 0 --> 1',
  ];
  const notes: string[] = [];
  withF1.forEach((r, i) => {
    const kind = i === 0 && withF1.length > 1 ? 'bar' : 'line';
    lines.push(`${kind} "${names[i]}" [${labels.map((l) => num(r.f1![l] ?? 0)).join(', ')}]`);
    notes.push(`${COLOUR_NAMES[i % COLOUR_NAMES.length]} ${kind === 'bar' ? 'bars' : 'line'}: ${names[i]}`);
  });
  return `${block('F1 per class (test split)', lines, withF1.length)}\n${caption(notes)}`;
}

/** Every Mermaid block in a Markdown document (their bodies), in order: what the tests render. */
export function mermaidBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/```mermaid\n([\s\S]*?)\n```/g)].map((m) => m[1]!);
}
