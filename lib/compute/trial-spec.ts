/**
 * A tuning trial computed as a Vertex AI CustomJob, on the remote under `trials/<trial key>/`:
 * `spec.json` (the featurized data by hash, the train params with the trial's assignment, the
 * objective and folds, the trial code's fingerprint), `epochs/<n>.json` (each epoch's pruning
 * value as the trial reports it, which the tuning process reads to decide pruning),
 * `outcome.json` (the finished trial) and `error.txt`. The key hashes the study, the trial
 * number and the spec, so two trials never share a prefix.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { artifactRefSchema } from '../lockfile.ts';

/** The code a trial runs (lib/tune/trial.ts and the model code under it), fingerprinted. */
export const TRIAL_CODE = ['lib/tune', 'lib/ml'];

export const trialSpecSchema = z
  .object({
    study: z.string(),
    number: z.number().int().min(0),
    /** Fingerprint of TRIAL_CODE in the repository that started the study. */
    code: z.string(),
    features: artifactRefSchema,
    train: z.record(z.string(), z.unknown()),
    objective: z.enum(['val_f1_macro', 'val_accuracy', 'val_loss']),
    folds: z.number().int().min(0),
  })
  .strict();

/** A metric value: a number, or NaN (a diverged model's val_loss), which JSON carries as null. */
const metricValue = z.union([z.number(), z.nan()]);

export const trialEpochSchema = z.object({ epoch: z.number().int().min(1), value: metricValue }).strict();

export const trialOutcomeSchema = z
  .object({
    value: metricValue,
    metrics: z.record(z.string(), metricValue),
    pruned: z.boolean(),
    epochs: z.number().int().min(0),
    curve: z.array(metricValue),
  })
  .strict();

export type TrialSpec = z.infer<typeof trialSpecSchema>;

export const trialPaths = {
  spec: (key: string) => `trials/${key}/spec.json`,
  epochs: (key: string) => `trials/${key}/epochs/`,
  epoch: (key: string, epoch: number) => `trials/${key}/epochs/${String(epoch).padStart(6, '0')}.json`,
  outcome: (key: string) => `trials/${key}/outcome.json`,
  error: (key: string) => `trials/${key}/error.txt`,
};

/**
 * JSON has no NaN or Infinity: a metric that is not finite (val_loss of a model that diverged)
 * travels as null and comes back as NaN.
 */
export function encodeNumbers(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v));
}

export function decodeNumbers(text: string): unknown {
  return JSON.parse(text, (_k, v) => (v === null ? NaN : v));
}

/** The trial key of `spec` (64 hex). */
export function trialKey(spec: TrialSpec): string {
  return createHash('sha256').update(JSON.stringify(spec)).digest('hex');
}
