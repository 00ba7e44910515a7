/**
 * The shape of evaluate's `out/eval/metrics.json` beyond its flat headline keys:
 *
 * ```json
 * {
 *   "accuracy": 0.81, "f1_macro": 0.79, "f1.angry": 0.9, ...,
 *   "intervals": { "accuracy": { "lo": 0.72, "hi": 0.88 }, ... },
 *   "bootstrap": { "resamples": 400, "confidence": 0.95, "seed": 0 },
 *   "slices": {
 *     "speaker": {
 *       "S03": { "n": 35, "speakers": 1, "min_size": 20,
 *                "metrics": { "accuracy": 0.8, ... }, "intervals": { "accuracy": { "lo": 0.66, "hi": 0.91 } } }
 *     },
 *     "gender": { "female": { ... } }, "duration": { "<1.5s": { ... } }, ...
 *   }
 * }
 * ```
 *
 * Flattened to dotted keys (`slices.speaker.S03.metrics.accuracy`, `intervals.f1_macro.lo`) the
 * file reads the same as nested: {@link readEvalMetrics} reads the flat form back into one type,
 * so the gate judges a candidate's file and a baseline the same way. The lockfile records the
 * flat keys without `slices` (lib/pipeline/recorded-slices.ts reads those from the out); a
 * lockfile from before that carries them too.
 */
import { z } from 'zod';
import { SLICE_KINDS, type SliceKind } from '../params-schema.ts';

/** A percentile confidence interval. */
export const intervalSchema = z
  .object({
    lo: z.number(),
    hi: z.number(),
  })
  .strict();
export type Interval = z.infer<typeof intervalSchema>;

/** One slice (a speaker, a gender, a duration bin, ...) of the test split. */
export const sliceResultSchema = z
  .object({
    /** Test clips in the slice. */
    n: z.number().int().min(0),
    /** Distinct speakers among them (the bootstrap resamples speakers first). */
    speakers: z.number().int().min(0),
    /** `evaluate.slices[].min_size`: below it the slice is reported, never gated. */
    min_size: z.number().int().min(1),
    /** Every evaluate metric, computed on the slice's clips. */
    metrics: z.record(z.string(), z.number()),
    /** Confidence interval of each metric (absent when `bootstrap.resamples` is 0). */
    intervals: z.record(z.string(), intervalSchema),
  })
  .strict();
export type SliceResult = z.infer<typeof sliceResultSchema>;

/** How the intervals were computed. */
export const bootstrapInfoSchema = z
  .object({
    resamples: z.number().int().min(0),
    confidence: z.number(),
    seed: z.number().int(),
  })
  .strict();

/** `out/eval/metrics.json`: flat headline metrics plus `intervals`, `bootstrap` and `slices`. */
export const evalMetricsSchema = z
  .object({
    intervals: z.record(z.string(), intervalSchema).optional(),
    bootstrap: bootstrapInfoSchema.optional(),
    /** Slice kind → slice value → result. */
    slices: z.partialRecord(z.enum(SLICE_KINDS), z.record(z.string(), sliceResultSchema)).optional(),
  })
  .catchall(z.number());
export type EvalMetricsFile = z.infer<typeof evalMetricsSchema>;

/** Evaluate metrics in one typed form, read from the file or from the lockfile's flat keys. */
export interface EvalMetrics {
  /** The flat headline metrics (`accuracy`, `f1_macro`, `f1.angry`, ...). */
  metrics: Record<string, number>;
  intervals: Record<string, Interval>;
  slices: Partial<Record<SliceKind, Record<string, SliceResult>>>;
  /** Coverage of the intervals (e.g. 0.95), when they were computed. */
  confidence?: number;
}

const NESTED = /^(intervals|slices|bootstrap)\./;
const INTERVAL = /^intervals\.(.+)\.(lo|hi)$/;
const SLICE_METRIC = /^slices\.([a-z_]+)\.(.+?)\.metrics\.(.+)$/;
const SLICE_INTERVAL = /^slices\.([a-z_]+)\.(.+?)\.intervals\.(.+)\.(lo|hi)$/;
const SLICE_COUNT = /^slices\.([a-z_]+)\.(.+)\.(n|speakers|min_size)$/;

const KINDS = new Set<string>(SLICE_KINDS);

/**
 * Reads evaluate metrics from flat dotted keys (a lockfile's `stages.evaluate.metrics`, or
 * `flattenMetrics` of the file). Keys it does not recognise under `intervals.` / `slices.` are
 * ignored; every other key is a headline metric.
 */
export function readEvalMetrics(flat: Record<string, number>): EvalMetrics {
  const out: EvalMetrics = { metrics: {}, intervals: {}, slices: {} };
  const slice = (kind: string, value: string): SliceResult | undefined => {
    if (!KINDS.has(kind)) return undefined;
    const byValue = (out.slices[kind as SliceKind] ??= {});
    return (byValue[value] ??= { n: 0, speakers: 0, min_size: 1, metrics: {}, intervals: {} });
  };
  for (const [key, v] of Object.entries(flat)) {
    if (!NESTED.test(key)) {
      out.metrics[key] = v;
      continue;
    }
    let m: RegExpExecArray | null;
    if (key === 'bootstrap.confidence') out.confidence = v;
    else if ((m = INTERVAL.exec(key)))
      (out.intervals[m[1]] ??= { lo: NaN, hi: NaN })[m[2] as 'lo' | 'hi'] = v;
    else if ((m = SLICE_INTERVAL.exec(key))) {
      const s = slice(m[1], m[2]);
      if (s) (s.intervals[m[3]] ??= { lo: NaN, hi: NaN })[m[4] as 'lo' | 'hi'] = v;
    } else if ((m = SLICE_METRIC.exec(key))) {
      const s = slice(m[1], m[2]);
      if (s) s.metrics[m[3]] = v;
    } else if ((m = SLICE_COUNT.exec(key))) {
      const s = slice(m[1], m[2]);
      if (s) s[m[3] as 'n' | 'speakers' | 'min_size'] = v;
    }
  }
  return out;
}

/**
 * True for a flattened interval, slice or bootstrap key (`intervals.f1_macro.lo`,
 * `slices.speaker.S03.metrics.accuracy`), with or without a stage prefix
 * (`evaluate.slices....`): the hundreds of keys that listings of headline metrics leave out.
 */
export function isSliceOrIntervalKey(key: string): boolean {
  return NESTED.test(key) || NESTED.test(key.slice(key.indexOf('.') + 1));
}

/** True when a slice is large enough to gate (`n >= min_size`). */
export function isGatedSlice(s: Pick<SliceResult, 'n' | 'min_size'>): boolean {
  return s.n >= s.min_size;
}
