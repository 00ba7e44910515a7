/**
 * A real model directory built from real audio for tests that need one end to end (batch
 * prediction, monitoring): features through the production path (`featurizeAudio`), a transform
 * fitted on them, a small seeded MLP trained for a few epochs, saved with `saveModelDir`.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { decodeWav } from '../../lib/audio/wav.ts';
import { buildModel } from '../../lib/ml/architectures.ts';
import { initBackend } from '../../lib/ml/backend.ts';
import { featurizeAudio, frameCount, type FeaturizeConfig } from '../../lib/ml/features.ts';
import { saveModelDir } from '../../lib/ml/model.ts';
import { fitTransform, normalizeSummary, writeTransform } from '../../lib/ml/transform.ts';

export const TEST_FEATURIZE: FeaturizeConfig = {
  sample_rate: 16000,
  frame_size: 512,
  hop_size: 256,
  n_mfcc: 13,
  n_mel: 26,
  max_seconds: 2,
};

/** The emotion of a TESS-style file name (`S01_word_angry.wav`). */
export function labelOf(file: string): string {
  return path.basename(file, '.wav').split('_').at(-1)!;
}

/** Raw summary features of each file (production path). */
export function summariesOf(files: string[], cfg: FeaturizeConfig = TEST_FEATURIZE): Float32Array[] {
  return files.map((f) => featurizeAudio(cfg, decodeWav(fs.readFileSync(f), f)).summary);
}

export interface AudioModelOptions {
  /** Training epochs (default 20). */
  epochs?: number;
  /** Feature settings (default `TEST_FEATURIZE`; the serving bench uses params.yaml's). */
  featurize?: FeaturizeConfig;
  /** Hidden units of the MLP (default 32). */
  units?: number;
  /** Weight-initialisation seed (default 3). */
  seed?: number;
  /** `params` and `dataHash` recorded in the model card (default `{epochs}` and `test`). */
  cardParams?: Record<string, unknown>;
  dataHash?: string;
  /** Training label of each file (default: from the file name); a test's wrong labels make a bad model. */
  labels?: string[];
}

/**
 * Trains and saves a model directory in `dir` from `files` (TESS-style names give labels).
 * Returns the summaries it was fitted on.
 */
export async function makeAudioModel(
  dir: string,
  files: string[],
  options: AudioModelOptions = {},
): Promise<{ summaries: Float32Array[] }> {
  const epochs = options.epochs ?? 20;
  await initBackend('cpu');
  const cfg = options.featurize ?? TEST_FEATURIZE;
  const clips = files.map((f) => featurizeAudio(cfg, decodeWav(fs.readFileSync(f), f)));
  const labels = options.labels ?? files.map(labelOf);
  const D = clips[0].summary.length;
  const T = frameCount(cfg);
  const F = clips[0].frames.length / T;
  const summaries = new Float32Array(files.length * D);
  const frames = new Float32Array(files.length * T * F);
  clips.forEach((c, i) => {
    summaries.set(c.summary, i * D);
    frames.set(c.frames, i * T * F);
  });
  const transform = fitTransform({ config: cfg, labels, n: files.length, summaries, frames });
  fs.mkdirSync(dir, { recursive: true });
  const transformPath = path.join(dir, '..', `transform-${path.basename(dir)}.json`);
  writeTransform(transformPath, transform);
  const built = buildModel({
    arch: 'mlp',
    summaryDim: D,
    frames: T,
    frameDim: F,
    classes: transform.labels.length,
    units: options.units ?? 32,
    seed: options.seed ?? 3,
  });
  built.model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const x = tf.tensor2d(normalizeSummary(transform, summaries), [files.length, D]);
  const y = tf.oneHot(
    tf.tensor1d(
      labels.map((l) => transform.labels.indexOf(l)),
      'int32',
    ),
    transform.labels.length,
  );
  await built.model.fit(x, y, { epochs, batchSize: 16, shuffle: false, verbose: 0 });
  x.dispose();
  y.dispose();
  await saveModelDir(dir, {
    model: built.model,
    transformPath,
    card: {
      version: 1,
      arch: 'mlp',
      input: 'summary',
      params: options.cardParams ?? { epochs },
      dataHash: options.dataHash ?? 'test',
      backend: tf.getBackend(),
      backendFallbacks: [],
      metrics: {},
      epochsRun: epochs,
      bestEpoch: epochs,
      labels: transform.labels,
    },
  });
  fs.rmSync(transformPath);
  return { summaries: clips.map((c) => c.summary) };
}
