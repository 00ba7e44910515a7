import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeWav, encodeWav } from '../../lib/audio/wav.ts';
import { loadSplit, readFeaturesIndex } from '../../lib/ml/dataset.ts';
import { featurizeAudio, frameCount, frameFeatureNames, summaryFeatureNames } from '../../lib/ml/features.ts';
import { normalizeFrames, normalizeSummary, readTransform, transformAudio } from '../../lib/ml/transform.ts';
import { memoryOutput } from '../../lib/output.ts';
import { StageError } from '../../lib/errors.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import {
  featurizeConfig,
  featurizeStage,
  runFeaturize,
  VALIDATE_REPORT,
} from '../../stages/featurize/index.ts';
import { makeTinyCorpus } from '../support/corpus.ts';

// Short clips keep the frame matrices small: T = ceil(1.5 s · 16000 / 256) = 94.
const params = paramsSchema.parse({ featurize: { max_seconds: 1.5 } });
const config = featurizeConfig(params.featurize);
const SPLIT_OF: Record<string, string> = { S01: 'train', S02: 'train', S03: 'validation', S04: 'test' };

let root: string;
let files: string[];
const EXCLUDED = `${PATHS.demo}/S01_sad/S01_`; // prefix; resolved to the real file below
let excludedPath = '';
const BROKEN = `${PATHS.demo}/S02_angry/S02_broken_angry.wav`;
const STEREO_44K = `${PATHS.demo}/S04_happy/S04_stereo_happy.wav`;

function writeJson(rel: string, value: unknown): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(value));
}

/** A manifest like ingest's (the fields featurize reads) for the files under out/data/demo. */
function writeManifest(extraError: string[]): void {
  const rels = [...files.map((f) => path.relative(root, f)), ...extraError].sort();
  writeJson(PATHS.manifest, {
    version: 1,
    root: PATHS.demo,
    labels: [...new Set(rels.map((r) => path.basename(r, '.wav').split('_')[2]))].sort(),
    files: rels.map((rel) => {
      const [speaker, , label] = path.basename(rel, '.wav').split('_');
      return {
        path: rel,
        sha256: '0'.repeat(64),
        label,
        speaker,
        duration: 1,
        sampleRate: 16000,
        channels: 1,
        split: SPLIT_OF[speaker],
        ...(extraError.includes(rel) ? { error: 'not a WAV file' } : {}),
      };
    }),
    splits: { train: ['S01', 'S02'], validation: ['S03'], test: ['S04'] },
  });
}

let lastStderr: string[] = [];

async function run(workers?: number, useMainThread?: boolean): Promise<Record<string, Buffer>> {
  const out = memoryOutput();
  await runFeaturize({ root, config, out, workers, useMainThread });
  lastStderr = out.stderr;
  const dir = path.join(root, PATHS.features);
  return Object.fromEntries(fs.readdirSync(dir).map((f) => [f, fs.readFileSync(path.join(dir, f))]));
}

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-featurize-'));
  files = await makeTinyCorpus(path.join(root, PATHS.demo), { speakers: 4, words: 1 });
  // One stereo 44.1 kHz file exercises downmix + resampling inside the stage.
  const mono = decodeWav(fs.readFileSync(files[0])).channels[0];
  const up = new Float32Array(Math.round((mono.length * 44100) / 16000));
  for (let i = 0; i < up.length; i++) up[i] = mono[Math.floor((i * 16000) / 44100)];
  fs.mkdirSync(path.dirname(path.join(root, STEREO_44K)), { recursive: true });
  fs.writeFileSync(path.join(root, STEREO_44K), encodeWav([up, up], 44100));
  files.push(path.join(root, STEREO_44K));
  // Unreadable file flagged by ingest: listed with an `error` and must be skipped.
  fs.mkdirSync(path.dirname(path.join(root, BROKEN)), { recursive: true });
  fs.writeFileSync(path.join(root, BROKEN), 'not audio');
  excludedPath = path.relative(
    root,
    files.find((f) => path.relative(root, f).startsWith(EXCLUDED))!,
  );
  writeManifest([BROKEN]);
  writeJson(VALIDATE_REPORT, { ok: false, anomalies: [], excluded: [excludedPath] });
}, 120_000);

afterAll(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('featurize stage', () => {
  let outputs1: Record<string, Buffer>;

  it('featurize writes index, f32 matrices, transform and stats with contract shapes', async () => {
    outputs1 = await run(1);
    const dir = path.join(root, PATHS.features);
    expect(Object.keys(outputs1).sort()).toEqual([
      'index.json',
      'stats.json',
      'test.frames.f32',
      'test.summary.f32',
      'train.frames.f32',
      'train.summary.f32',
      'transform.json',
      'validation.frames.f32',
      'validation.summary.f32',
    ]);
    const index = readFeaturesIndex(dir);
    const D = summaryFeatureNames(config).length;
    const F = frameFeatureNames(config).length;
    expect(index.summaryDim).toBe(D);
    expect(index.frameDim).toBe(F);
    expect(index.frames).toBe(frameCount(config));
    expect(index.frames).toBe(94);
    expect(index.featureNames).toHaveLength(D);
    // 4 speakers × 7 emotions = 28, + 1 stereo file, - 1 excluded; the broken file never counts.
    expect(index.splits.train.n).toBe(13);
    expect(index.splits.validation.n).toBe(7);
    expect(index.splits.test.n).toBe(8);
    expect(index.labels).toEqual(['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']);
    const all = Object.values(index.splits).flatMap((s) => s.paths);
    expect(all).not.toContain(excludedPath);
    expect(all).not.toContain(BROKEN);
    expect(lastStderr.filter((l) => l.includes('skipping'))).toEqual([
      `featurize: skipping ${BROKEN}: unreadable at ingest (not a WAV file)`,
    ]);
    for (const [name, s] of Object.entries(index.splits)) {
      const split = loadSplit(dir, name);
      expect(split.x.length).toBe(s.n * D);
      expect(split.frames.length).toBe(s.n * index.frames * F);
      expect(fs.statSync(path.join(dir, `${name}.summary.f32`)).size).toBe(s.n * D * 4);
      expect([...split.y]).toEqual(
        s.paths.map((p) => index.labels.indexOf(p.split('_').at(-1)!.slice(0, -4))),
      );
      expect(split.speakers.every((sp) => SPLIT_OF[sp] === name)).toBe(true);
    }
    const stats = JSON.parse(outputs1['stats.json'].toString());
    expect(Object.keys(stats)).toEqual(index.featureNames);
    const h = stats['mfcc_0.mean'];
    expect(h.edges).toHaveLength(h.counts.length + 1);
    expect(h.counts.reduce((a: number, b: number) => a + b, 0)).toBe(13);
  });

  it('featurize fits the scaler and label encoder on the training split only', () => {
    const dir = path.join(root, PATHS.features);
    const t = readTransform(path.join(dir, 'transform.json'));
    const train = loadSplit(dir, 'train');
    const test = loadSplit(dir, 'test');
    const mean = (x: Float32Array, n: number, d: number, c: number): number => {
      let s = 0;
      for (let r = 0; r < n; r++) s += x[r * d + c];
      return s / n;
    };
    let differsFromAll = 0;
    for (let c = 0; c < train.d; c++) {
      const m = mean(train.x, train.n, train.d, c);
      expect(t.mean[c]).toBeCloseTo(m, 4);
      const both = new Float32Array([...train.x, ...test.x]);
      if (Math.abs(mean(both, train.n + test.n, train.d, c) - t.mean[c]) > 1e-3 * (Math.abs(m) + 1e-3))
        differsFromAll++;
    }
    expect(differsFromAll).toBeGreaterThan(train.d / 2);
    // Normalised training summaries have mean ~0 and std ~1 for non-constant features.
    const z = normalizeSummary(t, train.x);
    const c = t.featureNames.indexOf('rms.mean');
    expect(Math.abs(mean(z, train.n, train.d, c))).toBeLessThan(1e-5);
    expect(t.labels).toEqual(['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']);
  });

  it.each([
    ['2 workers only', 2, false],
    ['this thread + 1 worker', 2, true],
  ] as const)(
    'featurize output is byte-identical across thread layouts (%s)',
    async (_name, workers, main) => {
      const outputs2 = await run(workers, main);
      expect(Object.keys(outputs2).sort()).toEqual(Object.keys(outputs1).sort());
      for (const name of Object.keys(outputs1))
        expect(outputs2[name].equals(outputs1[name]), name).toBe(true);
    },
  );

  it('featurize matrices equal transformAudio on the same files (no train/serve skew)', () => {
    const dir = path.join(root, PATHS.features);
    const t = readTransform(path.join(dir, 'transform.json'));
    for (const split of ['validation', 'test']) {
      const s = loadSplit(dir, split);
      for (let i = 0; i < s.n; i++) {
        const audio = decodeWav(fs.readFileSync(path.join(root, s.paths[i])));
        const served = transformAudio(t, audio);
        const row = s.x.subarray(i * s.d, (i + 1) * s.d);
        const frames = s.frames.subarray(i * s.t * s.f, (i + 1) * s.t * s.f);
        expect(served.raw).toEqual(row);
        expect(served.summary).toEqual(normalizeSummary(t, row));
        expect(served.frames).toEqual(normalizeFrames(t, frames));
        expect(featurizeAudio(t.featurize, audio).frames).toEqual(frames);
      }
    }
    const stereo = loadSplit(dir, 'test').paths.indexOf(STEREO_44K);
    expect(stereo).toBeGreaterThanOrEqual(0);
  });

  it('featurize stage declares its deps, params and outs', () => {
    const stage = featurizeStage(params);
    expect(stage.deps).toEqual([PATHS.manifest, VALIDATE_REPORT, PATHS.demo]);
    expect(stage.outs).toEqual([PATHS.features]);
    expect(stage.params).toContain('featurize.max_seconds');
    expect(stage.code).toContain('lib/ml/features.ts');
  });

  it('featurize refuses a label unseen in training and keeps the previous outputs', async () => {
    const manifestFile = path.join(root, PATHS.manifest);
    const original = fs.readFileSync(manifestFile, 'utf8');
    const before = fs.readFileSync(path.join(root, PATHS.features, 'index.json'));
    const manifest = JSON.parse(original);
    const victim = manifest.files.find((f: { split: string }) => f.split === 'validation');
    victim.label = 'calm';
    fs.writeFileSync(manifestFile, JSON.stringify(manifest));
    try {
      const err = await runFeaturize({ root, config, out: memoryOutput(), workers: 1 }).catch((e) => e);
      expect(err).toBeInstanceOf(StageError);
      expect(err.message).toBe(
        `${victim.path}: label "calm" of split validation never occurs in the training split. Give the training speakers examples of it or drop the class.`,
      );
      expect(fs.readFileSync(path.join(root, PATHS.features, 'index.json')).equals(before)).toBe(true);
      expect(fs.readdirSync(path.join(root, 'out')).filter((f) => f.includes('partial'))).toEqual([]);
    } finally {
      fs.writeFileSync(manifestFile, original);
    }
  });

  it('featurize fails with a one-line error when the training split is empty', async () => {
    const root2 = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-featurize-empty-'));
    try {
      const prev = root;
      root = root2;
      writeJson(PATHS.manifest, { version: 1, files: [], splits: {} });
      writeJson(VALIDATE_REPORT, { excluded: [] });
      root = prev;
      const err = await runFeaturize({ root: root2, config, out: memoryOutput(), workers: 1 }).catch(
        (e) => e,
      );
      expect(err).toBeInstanceOf(StageError);
      expect(err.message).toMatch(/^out\/ingest\/manifest\.json: no readable.*"train"/);
      expect(fs.existsSync(path.join(root2, PATHS.features))).toBe(false);
    } finally {
      fs.rmSync(root2, { recursive: true, force: true });
    }
  });
});
