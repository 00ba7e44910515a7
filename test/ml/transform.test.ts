import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DecodedAudio } from '../../lib/audio/wav.ts';
import { ConfigError, ConfigProblems } from '../../lib/errors.ts';
import type { FeaturizeConfig } from '../../lib/ml/features.ts';
import { featurizeAudio, frameCount, frameFeatureNames, summaryFeatureNames } from '../../lib/ml/features.ts';
import {
  fitTransform,
  normalizeFrames,
  normalizeSummary,
  readTransform,
  transformAudio,
  writeTransform,
} from '../../lib/ml/transform.ts';

const cfg: FeaturizeConfig = {
  sample_rate: 8000,
  frame_size: 256,
  hop_size: 128,
  n_mfcc: 8,
  n_mel: 16,
  max_seconds: 0.5,
};
const D = summaryFeatureNames(cfg).length;
const F = frameFeatureNames(cfg).length;
const T = frameCount(cfg);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-transform-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function chirp(f0: number, seconds: number, rate = 8000): DecodedAudio {
  const n = Math.round(seconds * rate);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++)
    x[i] = 0.4 * Math.sin(2 * Math.PI * f0 * (i / rate) * (1 + i / n)) + 0.01 * Math.sin(i);
  return { sampleRate: rate, channels: [x], bitDepth: '32f', length: n };
}

function fitted() {
  const clips = [chirp(200, 0.3), chirp(500, 0.5), chirp(900, 0.2)];
  const feats = clips.map((c) => featurizeAudio(cfg, c));
  const summaries = new Float32Array(3 * D);
  const frames = new Float32Array(3 * T * F);
  feats.forEach((f, i) => {
    summaries.set(f.summary, i * D);
    frames.set(f.frames, i * T * F);
  });
  return {
    t: fitTransform({ config: cfg, labels: ['sad', 'angry', 'sad'], n: 3, summaries, frames }),
    feats,
    summaries,
  };
}

describe('fitTransform', () => {
  it('fitTransform computes summary mean/std over the given rows and a sorted label encoder', () => {
    const { t, summaries } = fitted();
    expect(t.version).toBe(1);
    expect(t.labels).toEqual(['angry', 'sad']);
    expect(t.frames).toBe(T);
    expect(t.featureNames).toEqual(summaryFeatureNames(cfg));
    for (let c = 0; c < D; c++) {
      const col = [0, 1, 2].map((r) => summaries[r * D + c]);
      const mean = (col[0] + col[1] + col[2]) / 3;
      const sd = Math.sqrt(col.reduce((a, v) => a + (v - mean) ** 2, 0) / 3);
      expect(t.mean[c]).toBeCloseTo(mean, 6);
      expect(t.std[c]).toBeCloseTo(sd > 1e-12 ? sd : 1, 6);
    }
  });

  it('fitTransform ignores zero padding rows for the frame scaler', () => {
    const { t, feats } = fitted();
    // Only real frames count: mean of rms over the 3 clips' nFrames rows.
    const rmsCol = frameFeatureNames(cfg).indexOf('rms');
    let sum = 0;
    let count = 0;
    for (const f of feats) {
      for (let r = 0; r < f.nFrames; r++) sum += f.frames[r * F + rmsCol];
      count += f.nFrames;
    }
    expect(count).toBeLessThan(3 * T);
    expect(t.frameMean[rmsCol]).toBeCloseTo(sum / count, 6);
  });

  it('fitTransform stores std 1 for a constant feature so normalising never divides by 0', () => {
    const summaries = new Float32Array(2 * D).fill(3);
    const t = fitTransform({
      config: cfg,
      labels: ['a', 'a'],
      n: 2,
      summaries,
      frames: new Float32Array(2 * T * F),
    });
    expect(t.std.every((s) => s === 1)).toBe(true);
    expect(normalizeSummary(t, summaries).every((v) => v === 0)).toBe(true);
  });
});

describe('normalize', () => {
  it('normalizeFrames scales real frames and keeps padding rows zero', () => {
    const { t, feats } = fitted();
    const f = feats[2];
    const z = normalizeFrames(t, f.frames);
    expect(f.nFrames).toBeLessThan(T);
    expect(z.subarray(f.nFrames * F).every((v) => v === 0)).toBe(true);
    expect(z[0]).toBeCloseTo((f.frames[0] - t.frameMean[0]) / t.frameStd[0], 5);
  });

  it('normalizeSummary and normalizeFrames reject lengths that are not whole rows', () => {
    const { t } = fitted();
    expect(() => normalizeSummary(t, new Float32Array(D + 1))).toThrow(RangeError);
    expect(() => normalizeFrames(t, new Float32Array(F - 1))).toThrow(RangeError);
    expect(normalizeSummary(t, new Float32Array(2 * D))).toHaveLength(2 * D);
  });
});

describe('transformAudio', () => {
  it('transformAudio equals featurize + normalize for a new clip, bit for bit', () => {
    const { t } = fitted();
    const audio = chirp(300, 0.4);
    const r = transformAudio(t, audio);
    const f = featurizeAudio(cfg, audio);
    expect(r.raw).toEqual(f.summary);
    expect(r.summary).toEqual(normalizeSummary(t, f.summary));
    expect(r.frames).toEqual(normalizeFrames(t, f.frames));
    expect(r.summary).toHaveLength(D);
    expect(r.frames).toHaveLength(T * F);
  });
});

describe('readTransform', () => {
  it('readTransform round-trips writeTransform exactly', () => {
    const { t } = fitted();
    const file = path.join(tmp, 'a', 'transform.json');
    writeTransform(file, t);
    const back = readTransform(file);
    expect(back).toEqual(t);
    const audio = chirp(250, 0.3);
    expect(transformAudio(back, audio).summary).toEqual(transformAudio(t, audio).summary);
  });

  it.each([
    ['missing file', null, /cannot read transform/],
    ['bad JSON', '{', /not valid JSON/],
    ['wrong version', { version: 2 }, /^.*bad-wrong-version\.json:1: version: expected one of 1, got 2\./],
  ])('readTransform rejects a %s with a one-line ConfigError', (_n, content, re) => {
    const file = path.join(tmp, `bad-${_n.replace(/ /g, '-')}.json`);
    if (content !== null)
      fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    expect(() => readTransform(file)).toThrow(ConfigError);
    expect(() => readTransform(file)).toThrow(re);
  });

  it('readTransform reports every schema problem of a transform file, each with its line', () => {
    const { t } = fitted();
    const file = path.join(tmp, 'two-mistakes.json');
    fs.writeFileSync(file, JSON.stringify({ ...t, version: 2, mean: 'none' }, null, 2));
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    const lineOf = (key: string) => lines.findIndex((l) => l.startsWith(`  "${key}"`)) + 1;
    let err: unknown;
    try {
      readTransform(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigProblems);
    expect((err as ConfigProblems).lines).toEqual(
      [
        [
          lineOf('version'),
          `${file}:${lineOf('version')}: version: expected one of 1, got 2. Fix the value, or re-run the featurize stage.`,
        ],
        [
          lineOf('mean'),
          `${file}:${lineOf('mean')}: mean: expected array, got "none". Fix the value, or re-run the featurize stage.`,
        ],
      ]
        .sort((a, b) => (a[0] as number) - (b[0] as number))
        .map((x) => x[1]),
    );
  });

  it('readTransform rejects scalers that do not match the featurize config', () => {
    const { t } = fitted();
    const file = path.join(tmp, 'short.json');
    writeTransform(file, { ...t, mean: t.mean.slice(1) });
    expect(() => readTransform(file)).toThrow(/scaler lengths/);
    writeTransform(file, { ...t, featurize: { ...t.featurize, n_mfcc: 9 } });
    expect(() => readTransform(file)).toThrow(/do not match its featurize config/);
  });
});
