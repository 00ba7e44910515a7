/**
 * The schema of `params.yaml`: every tunable number of the speech-emotion pipeline, one section
 * per stage. Used to parse, to write defaults, and to generate `params.schema.json` for editors.
 * Each stage owns its section; keep defaults here so a missing key means "the default".
 */
import { z } from 'zod';
import { SLICE_KINDS, thresholdSchema } from './threshold-schema.ts';

export { SLICE_KINDS, thresholdSchema, type SliceKind } from './threshold-schema.ts';

/** One dimension of `tune.space`: a float or int range (optionally log-scaled) or a list of choices. */
export const dimensionSchema = z.discriminatedUnion('type', [
  z
    .object({ type: z.literal('float'), low: z.number(), high: z.number(), log: z.boolean().default(false) })
    .strict(),
  z
    .object({
      type: z.literal('int'),
      low: z.number().int(),
      high: z.number().int(),
      log: z.boolean().default(false),
    })
    .strict(),
  z
    .object({
      type: z.literal('choice'),
      values: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1),
    })
    .strict(),
]);

export const EMOTIONS = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'] as const;

const ratio = z.number().min(0).max(1);

export const dataParams = z
  .object({
    /** `demo` synthesizes the embedded corpus; `path` reads audio from `data.path` (local dir or gs:// prefix). */
    source: z.enum(['demo', 'path']).default('demo'),
    /** Folder (repository-relative) or gs:// prefix with audio, used when source is `path`. */
    path: z.string().default('data/raw'),
    /** Demo corpus: number of synthetic speakers (>= 8 gives a meaningful speaker-independent split; 10 gives 6/2/2). */
    speakers: z.number().int().min(3).max(64).default(10),
    /** Demo corpus: words per speaker and emotion (from a list of 200 TESS-style words). */
    words: z.number().int().min(1).max(200).default(5),
    /** Demo corpus: seed for prosody jitter, noise and gain augmentation. */
    seed: z.number().int().default(7),
    /** Demo corpus: additive noise level (RMS relative to full scale). */
    noise: z.number().min(0).max(0.5).default(0.003),
    /** Demo corpus: output sample rate. */
    sample_rate: z.number().int().min(8000).max(48000).default(16000),
  })
  .strict();

export const ingestParams = z
  .object({
    /** Label source: folder names, or a dataset's file-name convention; `auto` tries each. */
    labels: z.enum(['auto', 'folder', 'ravdess', 'tess', 'cremad']).default('auto'),
    /** Fractions of speakers in each split (test gets the rest). */
    train: ratio.default(0.6),
    validation: ratio.default(0.2),
    /** Seed for the deterministic speaker split. */
    seed: z.number().int().default(13),
    /** RAVDESS `calm` (not one of the seven labels): dropped (listed as skipped) or merged into neutral. */
    calm: z.enum(['drop', 'neutral']).default('drop'),
  })
  .strict();

export const validateParams = z
  .object({
    min_duration_s: z.number().positive().default(0.3),
    max_duration_s: z.number().positive().default(20),
    /** Files whose RMS is below this (dBFS) are reported as silent. */
    silence_dbfs: z.number().max(0).default(-60),
    /** Fraction of samples at full scale past which a file is reported as clipped. */
    max_clipping_ratio: ratio.default(0.01),
    /** Largest allowed ratio between the most and least frequent label. */
    max_class_imbalance: z.number().min(1).default(3),
    /** `fail`: error anomalies fail the stage; `exclude`: files with errors are listed in `excluded` and skipped downstream. */
    on_error: z.enum(['fail', 'exclude']).default('fail'),
  })
  .strict();

export const featurizeParams = z
  .object({
    /** Audio is resampled to this rate (Hz) before framing. */
    sample_rate: z.number().int().min(8000).max(48000).default(16000),
    /** FFT frame length in samples (a power of two, as Meyda requires). */
    frame_size: z
      .number()
      .int()
      .min(64)
      .max(8192)
      .refine((n) => (n & (n - 1)) === 0, 'must be a power of two (256, 512, 1024, ...)')
      .default(512),
    /** Samples between frame starts. */
    hop_size: z.number().int().min(16).max(8192).default(256),
    n_mfcc: z.number().int().min(1).max(40).default(13),
    n_mel: z.number().int().min(8).max(128).default(26),
    /** Longest clip considered, in seconds (longer audio is truncated; frames = ceil(max_seconds·rate/hop)). */
    max_seconds: z.number().positive().max(60).default(4),
  })
  .strict();

export const trainParams = z
  .object({
    arch: z.enum(['mlp', 'cnn1d']).default('mlp'),
    epochs: z.number().int().min(1).max(10000).default(60),
    batch_size: z.number().int().min(1).max(4096).default(32),
    lr: z.number().positive().max(1).default(0.003),
    units: z.number().int().min(4).max(4096).default(64),
    dropout: ratio.default(0.2),
    l2: z.number().min(0).default(0.0001),
    /** Epochs without validation improvement before stopping early (0 = never). */
    patience: z.number().int().min(0).default(10),
    seed: z.number().int().default(42),
    /** Preferred backend; `auto` picks tfjs-node, then wasm, then cpu. */
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  })
  .strict();

/** One `evaluate.slices` entry. */
export const sliceSpecSchema = z
  .object({
    kind: z.enum(SLICE_KINDS),
    /** Slices with fewer test clips are reported, never gated. */
    min_size: z.number().int().min(1).default(20),
    /** `duration` only: increasing bin edges in seconds (`[1.5, 2.5]` gives three bins). */
    bins: z.array(z.number().positive()).min(1).optional(),
  })
  .strict()
  .refine((s) => s.kind === 'duration' || s.bins === undefined, {
    message: 'bins apply to kind duration only',
    path: ['bins'],
  })
  .refine((s) => !s.bins || s.bins.every((v, i) => i === 0 || v > s.bins![i - 1]), {
    message: 'bins must increase',
    path: ['bins'],
  });

export const evaluateParams = z
  .object({
    /** Slices of the test split; every metric is computed per slice, with its interval. */
    slices: z
      .array(sliceSpecSchema)
      .default([
        { kind: 'speaker', min_size: 20 },
        { kind: 'gender', min_size: 20 },
        { kind: 'corpus', min_size: 20 },
        { kind: 'duration', min_size: 20, bins: [1.5, 2.5] },
        { kind: 'sample_rate', min_size: 20 },
        { kind: 'format', min_size: 20 },
      ])
      .refine((xs) => new Set(xs.map((x) => x.kind)).size === xs.length, 'each slice kind at most once'),
    /** Confidence intervals: a speaker-clustered bootstrap over clips (speakers, then their clips). */
    bootstrap: z
      .object({
        /** Resamples (0: no intervals). */
        resamples: z.number().int().min(0).max(20000).default(400),
        /** Coverage of the percentile intervals. */
        confidence: z.number().gt(0.5).lt(1).default(0.95),
        /** Seed of the resampling, so the same predictions always give the same intervals. */
        seed: z.number().int().default(0),
      })
      .strict()
      // A percentile interval from a handful of draws is one or two draws wide at each end (with
      // 1 resample, a zero-width interval that makes every change look significant): ask for
      // enough that each tail holds at least one draw beyond the interval.
      .refine((b) => b.resamples === 0 || b.resamples >= minResamples(b.confidence), {
        message:
          'too few resamples for a percentile interval at this confidence; use 0 (no intervals) or at least 2 / (1 - confidence) (40 at 0.95)',
        path: ['resamples'],
      })
      .prefault({}),
  })
  .strict();

/** Fewest bootstrap resamples whose percentile interval at `confidence` has a draw beyond each end. */
export function minResamples(confidence: number): number {
  return Math.ceil(2 / (1 - confidence) - 1e-9);
}

export const gateParams = z
  .object({
    /** Environment whose deployed model is the baseline (its branch's lockfile). */
    baseline_env: z.string().default('prod'),
    thresholds: z.array(thresholdSchema).default([
      { metric: 'f1_macro', direction: 'higher', min: 0.5, tolerance: 0.02, tolerance_kind: 'absolute' },
      { metric: 'accuracy', direction: 'higher', min: 0.5, tolerance: 0.02, tolerance_kind: 'absolute' },
    ]),
  })
  .strict();

/** Skew and drift monitoring of the served model (TFDV-style distances). */
export const monitorParams = z
  .object({
    /** Hours in the recent window; drift compares it with the window before it. */
    window_hours: z.number().positive().default(24),
    /** Fewer predictions than this in the window: "not enough data", no alert. */
    min_samples: z.number().int().min(1).default(100),
    /** Jensen-Shannon divergence threshold (bias-corrected for sample size) for numeric features. */
    js_threshold: z.number().min(0).max(1).default(0.2),
    /** Per-feature overrides of `js_threshold` (`mfcc_3.mean: 0.2`). */
    features: z.record(z.string(), z.number().min(0).max(1)).default({}),
    /** Significance level over all features (Bonferroni) a divergence must also reach to alert. */
    alpha: z.number().gt(0).lt(1).default(0.01),
    /** L-infinity threshold for the predicted-class distribution. */
    linf_threshold: z.number().min(0).max(1).default(0.2),
    max_error_rate: z.number().min(0).max(1).default(0.05),
    max_p99_ms: z.number().positive().default(250),
  })
  .strict();

/** Hyperparameter tuning (`lockstep tune`): objective, budget, sampler, pruning, search space. */
export const tuneParams = z
  .object({
    objective: z
      .object({
        /** Validation metric of each trial (the test split is never used for tuning). */
        metric: z.enum(['val_f1_macro', 'val_accuracy', 'val_loss']).default('val_f1_macro'),
        direction: z.enum(['maximize', 'minimize']).default('maximize'),
      })
      .strict()
      .prefault({}),
    budget: z
      .object({
        trials: z.number().int().min(1).max(1000).default(12),
        minutes: z.number().positive().default(15),
      })
      .strict()
      .prefault({}),
    /** `tpe` (after a few random trials) or `random`. */
    sampler: z.enum(['tpe', 'random']).default('tpe'),
    seed: z.number().int().default(0),
    /**
     * Trials at the same time: worker threads capped at the core count, or this many Vertex AI
     * CustomJobs at once when `compute.tune.backend` is vertex (.lockstep/config.yaml).
     */
    parallel: z.number().int().min(1).max(64).default(2),
    pruning: z
      .object({
        enabled: z.boolean().default(true),
        /** Epochs every trial runs before the median pruner may stop it. */
        warmup_epochs: z.number().int().min(0).default(5),
        /** Trials run to the end before the median pruner may stop any (Optuna's n_startup_trials). */
        startup_trials: z.number().int().min(1).default(5),
      })
      .strict()
      .prefault({}),
    /** 0: score on the validation split; k >= 2: speaker-grouped k-fold over train + validation. */
    cv_folds: z.number().int().min(0).max(20).default(0),
    /** Dotted `train.*` key → range or choices. */
    space: z.record(z.string(), dimensionSchema).default({
      'train.lr': { type: 'float', low: 0.0003, high: 0.03, log: true },
      'train.units': { type: 'int', low: 16, high: 256, log: true },
      'train.dropout': { type: 'float', low: 0, high: 0.5, log: false },
    }),
  })
  .strict();

export const paramsSchema = z
  .object({
    data: dataParams.prefault({}),
    ingest: ingestParams.prefault({}),
    validate: validateParams.prefault({}),
    featurize: featurizeParams.prefault({}),
    train: trainParams.prefault({}),
    evaluate: evaluateParams.prefault({}),
    gate: gateParams.prefault({}),
    monitor: monitorParams.prefault({}),
    tune: tuneParams.prefault({}),
  })
  .strict();

export type Params = z.infer<typeof paramsSchema>;
