/**
 * One gate threshold (`gate.thresholds` in params.yaml, and in an environment's policy) and the
 * slice kinds it can name. Apart from params-schema.ts so reading a policy (every registry and
 * history command) does not construct the whole params.yaml schema; params-schema.ts re-exports both.
 */
import { z } from 'zod';

/**
 * What evaluate can slice the test split by: the speaker, what the dataset conventions say about
 * the speaker (gender; the corpus whose naming convention labelled the file), the clip duration
 * (in `bins`), and the source file's sample rate and sample format.
 */
export const SLICE_KINDS = ['speaker', 'gender', 'corpus', 'duration', 'sample_rate', 'format'] as const;
export type SliceKind = (typeof SLICE_KINDS)[number];

/** One gate threshold: a metric, a bound and how it is compared. */
export const thresholdSchema = z
  .object({
    metric: z.string(),
    /**
     * Apply the rule to every slice of this kind (`evaluate.slices`) instead of the whole test
     * split: `min` / `max` bound the worst slice, `tolerance` bounds each slice's regression
     * against the baseline's same slice. Slices below their `min_size` are reported, not gated.
     */
    slice: z.enum(SLICE_KINDS).optional(),
    /** With `slice`: the largest allowed gap between the best and the worst slice. */
    max_gap: z.number().min(0).optional(),
    /** `higher` means larger is better. */
    direction: z.enum(['higher', 'lower']).default('higher'),
    /** Value threshold: the metric must be at least (or at most) this. */
    min: z.number().optional(),
    max: z.number().optional(),
    /**
     * Change threshold against the baseline model: allowed regression. Judged on the confidence
     * interval of the change: it fails only when the whole interval lies beyond the tolerance.
     */
    tolerance: z.number().min(0).optional(),
    /** Whether `tolerance` is absolute or relative to the baseline value. */
    tolerance_kind: z.enum(['absolute', 'relative']).default('absolute'),
  })
  .strict()
  .refine((t) => t.max_gap === undefined || t.slice !== undefined, {
    message: 'max_gap needs slice (the kind whose best and worst slices are compared)',
    path: ['max_gap'],
  });
