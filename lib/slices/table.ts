/**
 * Slice tables for the PR report, the job summary and `lockstep metrics diff`: one row per slice
 * of every kind, worst first (by the first metric), with its interval, the change against a
 * baseline when one is given, and whether the slice is large enough to be gated.
 */
import { isGatedSlice, type EvalMetrics, type Interval } from './shape.ts';

/** Metrics shown per slice, the first one ordering the rows. */
export const SLICE_TABLE_METRICS = ['f1_macro', 'accuracy'] as const;

export interface SliceRow {
  kind: string;
  slice: string;
  n: number;
  speakers: number;
  gated: boolean;
  min_size: number;
  /** Metric → value, interval and the baseline's value of the same slice. */
  metrics: Record<string, { value?: number; interval?: Interval; base?: number; delta?: number }>;
}

/** Rows of every slice of `candidate`, worst first by `metrics[0]`; baseline values where it has the slice. */
export function sliceRows(
  candidate: EvalMetrics,
  baseline?: EvalMetrics,
  metrics: readonly string[] = SLICE_TABLE_METRICS,
): SliceRow[] {
  const rows: SliceRow[] = [];
  for (const [kind, byValue] of Object.entries(candidate.slices)) {
    for (const [slice, s] of Object.entries(byValue ?? {})) {
      const baseSlice = baseline?.slices[kind as keyof EvalMetrics['slices']]?.[slice];
      const cells: SliceRow['metrics'] = {};
      for (const m of metrics) {
        const value = s.metrics[m];
        const base = baseSlice?.metrics[m];
        cells[m] = {
          ...(value !== undefined ? { value } : {}),
          ...(s.intervals[m] ? { interval: s.intervals[m] } : {}),
          ...(base !== undefined ? { base } : {}),
          ...(value !== undefined && base !== undefined ? { delta: value - base } : {}),
        };
      }
      rows.push({
        kind,
        slice,
        n: s.n,
        speakers: s.speakers,
        gated: isGatedSlice(s),
        min_size: s.min_size,
        metrics: cells,
      });
    }
  }
  const key = metrics[0];
  const worth = (r: SliceRow): number => r.metrics[key]?.value ?? Infinity;
  return rows.sort(
    (a, b) => worth(a) - worth(b) || a.kind.localeCompare(b.kind) || a.slice.localeCompare(b.slice),
  );
}

function num(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(3);
}

function signed(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '';
  return `${x > 0 ? '+' : x < 0 ? '−' : ''}${Math.abs(x).toFixed(3)}`;
}

/**
 * The rows as a table (Markdown with `markdown`, else aligned text): kind, slice, clips, each
 * metric with its interval, the change against the baseline when any row has one, and `gated`.
 */
export function renderSliceTable(
  rows: SliceRow[],
  options: { markdown?: boolean; metrics?: readonly string[]; baseLabel?: string } = {},
): string {
  const metrics = options.metrics ?? SLICE_TABLE_METRICS;
  if (rows.length === 0) return options.markdown ? '_No slices (evaluate.slices is empty)._' : 'no slices';
  const withBase = rows.some((r) => Object.values(r.metrics).some((c) => c.base !== undefined));
  const header = [
    'kind',
    'slice',
    'clips',
    ...metrics.flatMap((m) => [m, ...(withBase ? [`Δ vs ${options.baseLabel ?? 'base'}`] : [])]),
    'gated',
  ];
  const body = rows.map((r) => [
    r.kind,
    r.slice,
    `${r.n}${r.speakers > 1 ? ` (${r.speakers} spk)` : ''}`,
    ...metrics.flatMap((m) => {
      const c = r.metrics[m] ?? {};
      const ci = c.interval ? ` [${num(c.interval.lo)}, ${num(c.interval.hi)}]` : '';
      return [`${num(c.value)}${ci}`, ...(withBase ? [signed(c.delta)] : [])];
    }),
    r.gated ? 'yes' : `no (< ${r.min_size})`,
  ]);
  if (options.markdown) {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    const line = (cells: string[]) => `| ${cells.map(esc).join(' | ')} |`;
    return [
      line(header),
      `|${header.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`,
      ...body.map(line),
    ].join('\n');
  }
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}

/** The Markdown slice section of the report: the table, then what the intervals mean. */
export function renderSlicesSection(
  candidate: EvalMetrics,
  baseline?: EvalMetrics,
  baseLabel?: string,
): string {
  const level = `${Math.round((candidate.confidence ?? 0.95) * 100)}%`;
  return [
    renderSliceTable(sliceRows(candidate, baseline), { markdown: true, baseLabel }),
    '',
    `_Worst slices first. Brackets: ${level} speaker-clustered bootstrap intervals. Slices below their min_size are reported, never gated._`,
  ].join('\n');
}

/** Evaluate metrics of a stage-prefixed flat map (`metricsAt`: `evaluate.f1_macro`, ...). */
export function stageKeys(all: Record<string, number>, stage = 'evaluate'): Record<string, number> {
  const prefix = `${stage}.`;
  return Object.fromEntries(
    Object.entries(all)
      .filter(([k]) => k.startsWith(prefix))
      .map(([k, v]) => [k.slice(prefix.length), v]),
  );
}
