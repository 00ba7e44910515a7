/**
 * The transform artifact (`transform.json`), like a TFX Transform graph: the featurize config,
 * the label encoder and the scalers fitted on the training split only. Serving loads it and runs
 * `transformAudio`, which is the very function featurize runs per file (`featurizeAudio`), so
 * training and serving cannot drift apart.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { DecodedAudio } from '../audio/wav.ts';
import { ConfigError } from '../errors.ts';
import { parseValue } from '../yaml-source.ts';
import type { FeaturizeConfig } from './features.ts';
import { featurizeAudio, frameCount, frameFeatureNames, summaryFeatureNames } from './features.ts';

export type { FeaturizeConfig } from './features.ts';

export interface Transform {
  version: 1;
  featurize: FeaturizeConfig;
  /** D summary feature names (`mfcc_0.mean`, ...). */
  featureNames: string[];
  /** Summary scaler: per-feature mean and std over the training split (std 0 is stored as 1). */
  mean: number[];
  std: number[];
  /** Frame scaler: per frame-feature mean and std over the training split's real (unpadded) frames. */
  frameMean: number[];
  frameStd: number[];
  /** Label encoder: class index -> label, sorted, from the training split. */
  labels: string[];
  /** T: frames per clip. */
  frames: number;
  /** F per-frame feature names (`mfcc_0`, ..., `loudness`). */
  frameFeatureNames?: string[];
}

const finite = z.number().finite();

const transformSchema = z.object({
  version: z.literal(1),
  featurize: z.object({
    sample_rate: z.number().int().positive(),
    frame_size: z.number().int().positive(),
    hop_size: z.number().int().positive(),
    n_mfcc: z.number().int().positive(),
    n_mel: z.number().int().positive(),
    max_seconds: z.number().positive(),
  }),
  featureNames: z.array(z.string()),
  mean: z.array(finite),
  std: z.array(finite),
  frameMean: z.array(finite),
  frameStd: z.array(finite),
  labels: z.array(z.string()).min(1),
  frames: z.number().int().positive(),
  frameFeatureNames: z.array(z.string()).optional(),
});

export interface FitTransformInput {
  config: FeaturizeConfig;
  /** Training labels (strings); the encoder is their sorted unique set. */
  labels: string[];
  /** Number of training clips. */
  n: number;
  /** n×D raw summaries of the training split. */
  summaries: Float32Array;
  /** n×T×F raw frames of the training split (zero rows are padding and are ignored). */
  frames: Float32Array;
}

/** Mean and std (population; 0 → 1) of each column over the rows `include` accepts. */
function columnStats(
  data: Float32Array,
  rows: number,
  cols: number,
  include: (row: number) => boolean,
): { mean: number[]; std: number[] } {
  const sum = new Float64Array(cols);
  const sq = new Float64Array(cols);
  let count = 0;
  for (let r = 0; r < rows; r++) {
    if (!include(r)) continue;
    count++;
    for (let c = 0; c < cols; c++) sum[c] += data[r * cols + c];
  }
  const mean = Array.from(sum, (s) => (count ? s / count : 0));
  for (let r = 0; r < rows; r++) {
    if (!include(r)) continue;
    for (let c = 0; c < cols; c++) {
      const d = data[r * cols + c] - mean[c];
      sq[c] += d * d;
    }
  }
  const std = Array.from(sq, (s) => {
    const v = count ? Math.sqrt(s / count) : 0;
    return v > 1e-12 ? v : 1;
  });
  return { mean, std };
}

function isZeroRow(data: Float32Array, row: number, cols: number): boolean {
  for (let c = row * cols, end = c + cols; c < end; c++) if (data[c] !== 0) return false;
  return true;
}

/** Fits the label encoder and both scalers on the training split. */
export function fitTransform(input: FitTransformInput): Transform {
  const { config, n } = input;
  const featureNames = summaryFeatureNames(config);
  const frameNames = frameFeatureNames(config);
  const D = featureNames.length;
  const F = frameNames.length;
  const T = frameCount(config);
  if (input.summaries.length !== n * D || input.frames.length !== n * T * F) {
    throw new RangeError(`fitTransform: expected ${n}×${D} summaries and ${n}×${T}×${F} frames`);
  }
  const summary = columnStats(input.summaries, n, D, () => true);
  const frame = columnStats(input.frames, n * T, F, (r) => !isZeroRow(input.frames, r, F));
  return {
    version: 1,
    featurize: { ...config },
    featureNames,
    mean: summary.mean,
    std: summary.std,
    frameMean: frame.mean,
    frameStd: frame.std,
    labels: [...new Set(input.labels)].sort(),
    frames: T,
    frameFeatureNames: frameNames,
  };
}

/** Scales a raw D summary: (x - mean) / std, as float32. */
export function normalizeSummary(t: Transform, raw: Float32Array): Float32Array {
  const D = t.mean.length;
  if (raw.length % D !== 0) {
    throw new RangeError(`normalizeSummary: ${raw.length} values is not a whole number of ${D}-feature rows`);
  }
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const c = i % D;
    out[i] = (raw[i] - t.mean[c]) / t.std[c];
  }
  return out;
}

/**
 * Scales raw frames (T×F per clip, any number of clips back to back). All-zero rows are padding
 * past the clip's end and stay zero, so a sequence model can mask them.
 */
export function normalizeFrames(t: Transform, raw: Float32Array): Float32Array {
  const F = t.frameMean.length;
  if (raw.length % F !== 0) {
    throw new RangeError(
      `normalizeFrames: ${raw.length} values is not a whole number of ${F}-feature frames`,
    );
  }
  const rows = raw.length / F;
  const out = new Float32Array(raw.length);
  for (let r = 0; r < rows; r++) {
    if (isZeroRow(raw, r, F)) continue;
    for (let c = 0; c < F; c++) out[r * F + c] = (raw[r * F + c] - t.frameMean[c]) / t.frameStd[c];
  }
  return out;
}

/**
 * Decoded audio → normalised summary and frames, through exactly the code path featurize uses
 * (downmix → NaN/Inf → 0 → resample → truncate → frame → features → summary → scale).
 */
export function transformAudio(
  t: Transform,
  audio: DecodedAudio,
): { summary: Float32Array; frames: Float32Array; raw: Float32Array } {
  const clip = featurizeAudio(t.featurize, audio);
  return {
    summary: normalizeSummary(t, clip.summary),
    frames: normalizeFrames(t, clip.frames),
    raw: clip.summary,
  };
}

/** Validates a parsed transform object; `where` names the file in errors, `text` gives their lines. */
export function parseTransform(value: unknown, where = 'transform.json', text?: string): Transform {
  // Every schema problem, one line each (with its line when the file's text is given).
  const t = parseValue(transformSchema, value, where, {
    text,
    suffix: ', or re-run the featurize stage',
  }) as Transform;
  const D = t.featureNames.length;
  const F = t.frameMean.length;
  if (t.mean.length !== D || t.std.length !== D || t.frameStd.length !== F) {
    throw new ConfigError(
      `${where}: scaler lengths do not match feature names "${D}". Re-run the featurize stage.`,
    );
  }
  const expectedD = summaryFeatureNames(t.featurize).length;
  const expectedF = frameFeatureNames(t.featurize).length;
  if (D !== expectedD || F !== expectedF || t.frames !== frameCount(t.featurize)) {
    throw new ConfigError(
      `${where}: shapes D=${D} F=${F} T=${t.frames} do not match its featurize config. Re-run the featurize stage.`,
    );
  }
  return t;
}

/** Reads and validates `transform.json`. @throws ConfigError when missing or malformed. */
export function readTransform(file: string): Transform {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${file}: cannot read transform (${(err as NodeJS.ErrnoException).code ?? 'error'}). Run the featurize stage first.`,
      { cause: err },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON. Re-run the featurize stage.`, { cause: err });
  }
  return parseTransform(json, file, text);
}

/** Writes `transform.json` atomically (temp file + rename). */
export function writeTransform(file: string, t: Transform): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(t, null, 1) + '\n');
  fs.renameSync(tmp, file);
}
