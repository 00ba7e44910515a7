/**
 * Slice metrics as rows (`slice`, `metric`, `value`) for the plots and the report's headline,
 * read from evaluate's `metrics.json` in its one shape (lib/slices/shape.ts): `slices` is slice
 * kind → slice value → `{n, speakers, min_size, metrics, intervals}`. The lockfile's flattened
 * form (`slices.speaker.S03.metrics.f1_macro`) reads the same. A revision from before slices
 * existed simply has none; a `slices` that does not fit the schema is an error naming the file.
 */
import { evalMetricsSchema, isGatedSlice, readEvalMetrics, type Interval } from '../slices/shape.ts';
import { parseValue } from '../yaml-source.ts';

/** Metrics plotted per slice (every evaluate metric is recorded; these are the headline ones). */
export const SLICE_PLOT_METRICS = ['f1_macro', 'accuracy'] as const;

export interface SliceRow {
  /** `speaker=OAF`, `gender=female`, ... */
  slice: string;
  metric: string;
  value: number;
  /** Test clips in the slice. */
  n: number;
  /** False below the slice's `min_size`: reported, never gated. */
  gated: boolean;
  interval?: Interval;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return Boolean(v) && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Slice rows of a `metrics.json` document (nested `slices`) or a flat lockfile metrics map, for
 * `metrics` (default {@link SLICE_PLOT_METRICS}), in the file's order.
 * @throws LockstepError naming `file` when `slices` does not fit lib/slices/shape.ts.
 */
export function parseSlices(
  doc: unknown,
  file = 'metrics.json',
  metrics: readonly string[] = SLICE_PLOT_METRICS,
): SliceRow[] {
  if (!isRecord(doc)) return [];
  let slices;
  if ('slices' in doc) {
    slices =
      parseValue(evalMetricsSchema.shape.slices, doc.slices, file, {
        at: ['slices'],
        suffix:
          ', or re-run evaluate (lockstep repro evaluate); the shape is in lib/slices/eval-metrics.schema.json',
      }) ?? {};
  } else {
    const flat: Record<string, number> = {};
    for (const [k, v] of Object.entries(doc)) if (typeof v === 'number') flat[k] = v;
    slices = readEvalMetrics(flat).slices;
  }
  const rows: SliceRow[] = [];
  for (const [kind, byValue] of Object.entries(slices)) {
    for (const [value, s] of Object.entries(byValue ?? {})) {
      for (const metric of metrics) {
        const v = s.metrics[metric];
        if (typeof v !== 'number' || !Number.isFinite(v)) continue;
        rows.push({
          slice: `${kind}=${value}`,
          metric,
          value: v,
          n: s.n,
          gated: isGatedSlice(s),
          ...(s.intervals[metric] ? { interval: s.intervals[metric] } : {}),
        });
      }
    }
  }
  return rows;
}

/** The headline metric a slice is judged by: macro F1 when recorded, else accuracy. */
export function sliceHeadlineMetric(rows: SliceRow[]): string | undefined {
  const have = new Set(rows.map((r) => r.metric));
  return [...SLICE_PLOT_METRICS].find((m) => have.has(m)) ?? rows[0]?.metric;
}

/**
 * The slice with the lowest headline metric among those large enough to gate (as the gate
 * judges them); among all slices only when none is. Undefined without slices.
 */
export function worstSlice(rows: SliceRow[], metric = sliceHeadlineMetric(rows)): SliceRow | undefined {
  const candidates = rows.filter((r) => r.metric === metric);
  const pool = candidates.some((r) => r.gated) ? candidates.filter((r) => r.gated) : candidates;
  let worst: SliceRow | undefined;
  for (const r of pool) if (!worst || r.value < worst.value) worst = r;
  return worst;
}
