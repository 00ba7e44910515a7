/**
 * What the PR comment leads with: the headline metrics of the head against the base (macro F1,
 * accuracy, MCC, and the worst slice when evaluate records slices), then, folded away, the
 * per-class table. Pure: both revisions' data is already read (lib/plots/collect.ts).
 */
import { formatValue } from '../pipeline/diff.ts';
import { sliceHeadlineMetric, worstSlice, type SliceRow } from '../plots/slices.ts';
import type { CurvePoint } from '../plots/templates.ts';

/** One side of the comparison. */
export interface ReportRevision {
  /** Label in tables and legends (`main`, a short sha, `head`). */
  label: string;
  /** Evaluate's metrics (`accuracy`, `f1_macro`, `mcc`, `f1.<label>`, ...). */
  metrics: Record<string, number>;
  history?: { epochs: CurvePoint[]; best_epoch?: number };
  slices?: SliceRow[];
}

export interface Comparison {
  base?: ReportRevision;
  head: ReportRevision;
}

const HEADLINE: [key: string, label: string][] = [
  ['f1_macro', 'F1 (macro)'],
  ['accuracy', 'accuracy'],
  ['mcc', 'MCC'],
];

function escapeCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function fmt(v: number | undefined): string {
  return v === undefined ? '–' : formatValue(Math.round(v * 1e4) / 1e4);
}

/** `+0.0123 ▲`, `−0.02 ▼`, `0`, or empty when a side is missing. */
export function formatDelta(base: number | undefined, head: number | undefined): string {
  if (base === undefined || head === undefined) return '';
  const d = Math.round((head - base) * 1e4) / 1e4;
  if (d === 0) return '±0';
  return d > 0 ? `+${formatValue(d)} ▲` : `−${formatValue(-d)} ▼`;
}

function table(header: string[], rows: string[][]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [
    `| ${header.map(escapeCell).join(' | ')} |`,
    `|${align.join('|')}|`,
    ...rows.map((r) => `| ${r.map(escapeCell).join(' | ')} |`),
  ].join('\n');
}

/** The headline table: metric, base, head, delta; the worst slice names the slice on each side. */
export function renderHeadline(c: Comparison): string {
  const base = c.base;
  const header = ['metric', ...(base ? [base.label] : []), c.head.label, ...(base ? ['Δ'] : [])];
  const rows: string[][] = [];
  for (const [key, label] of HEADLINE) {
    const h = c.head.metrics[key];
    const b = base?.metrics[key];
    if (h === undefined && b === undefined) continue;
    rows.push([label, ...(base ? [fmt(b)] : []), fmt(h), ...(base ? [formatDelta(b, h)] : [])]);
  }
  const metric = sliceHeadlineMetric([...(c.head.slices ?? []), ...(base?.slices ?? [])]);
  const hw = worstSlice(c.head.slices ?? [], metric);
  const bw = worstSlice(base?.slices ?? [], metric);
  if (hw || bw) {
    const cell = (w: SliceRow | undefined) =>
      w ? `${fmt(w.value)} (${w.slice}${w.gated ? '' : `, ${w.n} clips, below min_size`})` : '–';
    rows.push([
      `worst slice (${metric})`,
      ...(base ? [cell(bw)] : []),
      cell(hw),
      ...(base ? [formatDelta(bw?.value, hw?.value)] : []),
    ]);
  }
  if (rows.length === 0) return '_No evaluate metrics (evaluate did not run)._';
  return table(header, rows);
}

/** Per-class precision, recall and F1 of base and head, with the F1 delta. */
export function renderPerClass(c: Comparison): string | undefined {
  const labels = [
    ...new Set(
      [c.base?.metrics, c.head.metrics].flatMap((m) =>
        Object.keys(m ?? {})
          .filter((k) => k.startsWith('f1.'))
          .map((k) => k.slice(3)),
      ),
    ),
  ];
  if (labels.length === 0) return undefined;
  const b = c.base;
  const header = [
    'class',
    ...(b ? [`F1 ${b.label}`] : []),
    `F1 ${c.head.label}`,
    ...(b ? ['Δ F1'] : []),
    'precision',
    'recall',
  ];
  const rows = labels.map((l) => {
    const hf = c.head.metrics[`f1.${l}`];
    const bf = b?.metrics[`f1.${l}`];
    return [
      l,
      ...(b ? [fmt(bf)] : []),
      fmt(hf),
      ...(b ? [formatDelta(bf, hf)] : []),
      fmt(c.head.metrics[`precision.${l}`]),
      fmt(c.head.metrics[`recall.${l}`]),
    ];
  });
  return table(header, rows);
}
