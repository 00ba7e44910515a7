/**
 * Writes a tiny `out/features`-format directory (index.json, <split>.summary.f32,
 * <split>.frames.f32, transform.json) with class-dependent synthetic features, so model tests do
 * not need audio or the featurize stage. The featurize config is shrunk (T = 7 frames) so cnn1d
 * trains in a second.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeF32 } from '../../lib/ml/dataset.ts';
import {
  frameCount,
  frameFeatureNames,
  summaryFeatureNames,
  type FeaturizeConfig,
} from '../../lib/ml/features.ts';
import { fitTransform, writeTransform } from '../../lib/ml/transform.ts';
import { createRng } from '../../lib/rng.ts';

export const FIXTURE_CONFIG: FeaturizeConfig = {
  sample_rate: 16000,
  frame_size: 256,
  hop_size: 256,
  n_mfcc: 2,
  n_mel: 8,
  max_seconds: 0.1,
};

export const FIXTURE_LABELS = ['angry', 'happy', 'sad'];

export interface FixtureOptions {
  /** Examples per class in each split. */
  perClass?: Partial<Record<'train' | 'validation' | 'test', number>>;
  /** Distance between class means in units of the noise std (smaller = harder). */
  separation?: number;
  seed?: number;
  /** Featurize config whose shapes (D, F, T) the fixture has (default: FIXTURE_CONFIG). */
  config?: FeaturizeConfig;
  /** Class labels (default: FIXTURE_LABELS). */
  labels?: string[];
}

/** Writes the fixture into `dir` and returns its shapes. */
export function writeFeatureFixture(
  dir: string,
  options: FixtureOptions = {},
): { d: number; f: number; t: number } {
  const cfg = options.config ?? FIXTURE_CONFIG;
  const classes = options.labels ?? FIXTURE_LABELS;
  const names = summaryFeatureNames(cfg);
  const d = names.length;
  const f = frameFeatureNames(cfg).length;
  const t = frameCount(cfg);
  const perClass = { train: 12, validation: 4, test: 4, ...options.perClass };
  const sep = options.separation ?? 1.5;
  const rng = createRng(options.seed ?? 1);
  const gauss = (): number => {
    const u = Math.max(1e-12, rng.next());
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  // Each class shifts a different third of the features, on top of per-feature offsets/scales.
  const offset = Array.from({ length: Math.max(d, f) }, () => 5 * gauss());
  fs.mkdirSync(dir, { recursive: true });
  const splits: Record<string, { n: number; paths: string[]; speakers: string[]; labels: number[] }> = {};
  const data: Record<string, { x: Float32Array; frames: Float32Array; labels: string[] }> = {};
  for (const split of ['train', 'validation', 'test'] as const) {
    const n = perClass[split] * classes.length;
    const x = new Float32Array(n * d);
    const frames = new Float32Array(n * t * f);
    const labels: number[] = [];
    const paths: string[] = [];
    const speakers: string[] = [];
    for (let i = 0; i < n; i++) {
      const c = i % classes.length;
      labels.push(c);
      paths.push(`out/data/demo/S0${i % 3}_${classes[c]}/S0${i % 3}_w${i}_${classes[c]}.wav`);
      speakers.push(`S0${i % 3}`);
      for (let j = 0; j < d; j++) {
        const shift = j % classes.length === c ? sep : 0;
        x[i * d + j] = offset[j] + (shift + gauss()) * (1 + (j % 4));
      }
      for (let k = 0; k < t; k++) {
        for (let j = 0; j < f; j++) {
          const shift = j % classes.length === c ? sep : 0;
          frames[(i * t + k) * f + j] = offset[j] + shift + gauss();
        }
      }
    }
    splits[split] = { n, paths, speakers, labels };
    data[split] = { x, frames, labels: labels.map((l) => classes[l]) };
    writeF32(path.join(dir, `${split}.summary.f32`), x);
    writeF32(path.join(dir, `${split}.frames.f32`), frames);
  }
  const tr = data.train;
  writeTransform(
    path.join(dir, 'transform.json'),
    fitTransform({ config: cfg, labels: tr.labels, n: splits.train.n, summaries: tr.x, frames: tr.frames }),
  );
  const index = {
    version: 1,
    featureNames: names,
    summaryDim: d,
    frameDim: f,
    frames: t,
    labels: classes,
    splits,
  };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index, null, 1) + '\n');
  return { d, f, t };
}
