/**
 * The `featurize` stage (like TFX Transform): per-clip frame matrices and summary vectors for
 * every manifest file not excluded by validation, the transform artifact (scalers and label
 * encoder fitted on the training split only) and training-split histograms for drift checks.
 * Writes `out/features/` (see /work/briefs/ml-contracts.md §4) via a staging dir + rename.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StageError } from '../../lib/errors.ts';
import type { FeaturesIndex } from '../../lib/ml/dataset.ts';
import { FEATURES_INDEX_VERSION, splitFiles, writeF32 } from '../../lib/ml/dataset.ts';
import type { FeaturizeConfig } from '../../lib/ml/features.ts';
import { frameCount, frameFeatureNames, summaryFeatureNames } from '../../lib/ml/features.ts';
import { fitTransform, writeTransform } from '../../lib/ml/transform.ts';
import type { StageResult } from '../../lib/types.ts';
import type { Output } from '../../lib/output.ts';
import { PATHS } from '../../lib/paths.ts';
import type { ManifestFile } from './inputs.ts';
import { readExcluded, readManifest } from './inputs.ts';
import { featurizeFiles, type FileResult } from './pool.ts';
import { histograms } from './stats.ts';
import { VALIDATE_REPORT } from './stage.ts';

export { featurizeConfig, featurizeStage, VALIDATE_REPORT } from './stage.ts';

/** Splits always written (empty when the manifest has none), in this order. */
const STANDARD_SPLITS = ['train', 'validation', 'test'];

export interface FeaturizeRunOptions {
  /** Absolute repository root. */
  root: string;
  config: FeaturizeConfig;
  out: Output;
  /** Compute threads (default: available cores); 0/1 computes in-process. Output does not depend on it. */
  workers?: number;
  /** Let the calling thread featurize files too (default true). */
  useMainThread?: boolean;
  signal?: AbortSignal;
}

/** The manifest files featurize reads (not excluded by validation, readable at ingest), in manifest order. */
export function featurizeCandidates(root: string, out: Output): ManifestFile[] {
  const abs = (rel: string): string => path.resolve(root, rel);
  const manifest = readManifest(abs(PATHS.manifest), PATHS.manifest);
  const excluded = readExcluded(abs(VALIDATE_REPORT), VALIDATE_REPORT);
  const candidates: ManifestFile[] = [];
  for (const file of manifest.files) {
    if (excluded.has(file.path)) continue;
    if (file.error) {
      out.err(`featurize: skipping ${file.path}: unreadable at ingest (${file.error})`);
      continue;
    }
    candidates.push(file);
  }
  return candidates;
}

/** Per-file features of `files` (repository-relative), in order. */
export async function computeFileResults(
  opts: FeaturizeRunOptions,
  files: ManifestFile[],
): Promise<{ results: FileResult[]; computeSeconds: number }> {
  const started = performance.now();
  let lastShown = 0;
  const results = await featurizeFiles(
    opts.config,
    files.map((f) => path.resolve(opts.root, f.path)),
    {
      workers: opts.workers,
      useMainThread: opts.useMainThread,
      signal: opts.signal,
      onProgress: (done, total) => {
        const now = Date.now();
        if (done === total || now - lastShown > 2000) {
          lastShown = now;
          opts.out.err(`featurize: ${done}/${total} files`);
        }
      },
    },
  );
  return { results, computeSeconds: (performance.now() - started) / 1000 };
}

/** Runs featurize: manifest + validate report → `out/features/`. Returns the summary line. */
export async function runFeaturize(opts: FeaturizeRunOptions): Promise<StageResult> {
  const candidates = featurizeCandidates(opts.root, opts.out);
  const { results, computeSeconds } = await computeFileResults(opts, candidates);
  return writeFeatures(opts, candidates, results, computeSeconds);
}

/**
 * Writes `out/features/` from per-file results (one per candidate, same order): the part of
 * featurize after the per-file work, shared by a single-machine run and the merge of shards, so
 * both give the same bytes.
 */
export function writeFeatures(
  opts: FeaturizeRunOptions,
  candidates: ManifestFile[],
  results: FileResult[],
  computeSeconds: number,
): StageResult {
  const { root, config, out } = opts;
  const abs = (rel: string): string => path.resolve(root, rel);
  const manifest = readManifest(abs(PATHS.manifest), PATHS.manifest);
  const featureNames = summaryFeatureNames(config);
  const frameNames = frameFeatureNames(config);
  const D = featureNames.length;
  const F = frameNames.length;
  const T = frameCount(config);

  // Group by split, keeping manifest (path) order inside each split.
  const bySplit = new Map<string, { file: ManifestFile; summary: Float32Array; frames: Float32Array }[]>();
  for (const s of [...STANDARD_SPLITS, ...Object.keys(manifest.splits ?? {})]) bySplit.set(s, []);
  let audioSeconds = 0;
  candidates.forEach((file, i) => {
    const r = results[i];
    if ('error' in r) {
      out.err(`featurize: skipping ${file.path}: ${r.error}`);
      return;
    }
    audioSeconds += r.seconds;
    if (!bySplit.has(file.split)) bySplit.set(file.split, []);
    bySplit.get(file.split)!.push({ file, summary: r.summary, frames: r.frames });
  });

  const train = bySplit.get('train')!;
  if (train.length === 0) {
    throw new StageError(
      'featurize',
      `${PATHS.manifest}: no readable, non-excluded files in split "train". Check ingest.train and the validate report.`,
    );
  }

  const stack = (rows: Float32Array[], width: number): Float32Array => {
    const m = new Float32Array(rows.length * width);
    rows.forEach((r, i) => m.set(r, i * width));
    return m;
  };
  const trainSummaries = stack(
    train.map((r) => r.summary),
    D,
  );
  const transform = fitTransform({
    config,
    labels: train.map((r) => r.file.label),
    n: train.length,
    summaries: trainSummaries,
    frames: stack(
      train.map((r) => r.frames),
      T * F,
    ),
  });
  const labelIndex = new Map(transform.labels.map((l, i) => [l, i]));

  const dest = abs(PATHS.features);
  const staging = `${dest}.partial-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  try {
    const index: FeaturesIndex = {
      version: FEATURES_INDEX_VERSION,
      featureNames,
      summaryDim: D,
      frameDim: F,
      frames: T,
      labels: transform.labels,
      splits: {},
      frameFeatureNames: frameNames,
    };
    for (const [split, rows] of bySplit) {
      const labels = rows.map(({ file }) => {
        const y = labelIndex.get(file.label);
        if (y === undefined) {
          throw new StageError(
            'featurize',
            `${file.path}: label "${file.label}" of split ${split} never occurs in the training split. Give the training speakers examples of it or drop the class.`,
          );
        }
        return y;
      });
      index.splits[split] = {
        n: rows.length,
        paths: rows.map((r) => r.file.path),
        speakers: rows.map((r) => r.file.speaker),
        labels,
      };
      const files = splitFiles(split);
      writeF32(
        path.join(staging, files.summary),
        split === 'train'
          ? trainSummaries
          : stack(
              rows.map((r) => r.summary),
              D,
            ),
      );
      writeF32(
        path.join(staging, files.frames),
        stack(
          rows.map((r) => r.frames),
          T * F,
        ),
      );
    }
    fs.writeFileSync(path.join(staging, 'index.json'), JSON.stringify(index, null, 1) + '\n');
    writeTransform(path.join(staging, 'transform.json'), transform);
    fs.writeFileSync(
      path.join(staging, 'stats.json'),
      JSON.stringify(histograms(featureNames, trainSummaries, train.length), null, 1) + '\n',
    );
    fs.rmSync(dest, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.renameSync(staging, dest);
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }

  const counts = [...bySplit].map(([s, rows]) => `${s} ${rows.length}`).join(', ');
  const rtf = computeSeconds > 0 ? audioSeconds / computeSeconds : 0;
  return {
    summary: `${counts}; D=${D}, T×F=${T}×${F}; ${audioSeconds.toFixed(1)} s of audio in ${computeSeconds.toFixed(1)} s (${rtf.toFixed(0)}× real time)`,
  };
}
