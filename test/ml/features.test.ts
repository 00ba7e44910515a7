import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecodedAudio } from '../../lib/audio/wav.ts';
import { decodeWav } from '../../lib/audio/wav.ts';
import type { FeaturizeConfig } from '../../lib/ml/features.ts';
import {
  extractFeatures,
  featurizeAudio,
  frameCount,
  frameFeatureNames,
  FrameExtractor,
  prepareAudio,
  summaryFeatureNames,
} from '../../lib/ml/features.ts';
import { configureMeyda, maxRelativeErrors, meydaClip, meydaFrame } from '../../lib/ml/meyda-reference.ts';
import { makeTinyCorpus } from '../support/corpus.ts';

const base: FeaturizeConfig = {
  sample_rate: 16000,
  frame_size: 512,
  hop_size: 256,
  n_mfcc: 13,
  n_mel: 26,
  max_seconds: 2,
};

let dir: string;
/** Real speech: one utterance per emotion from the tiny corpus, prepared at 16 kHz. */
let clips: Float32Array[];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-features-'));
  const files = await makeTinyCorpus(dir, { speakers: 1, words: 1, emotions: ['angry', 'sad', 'neutral'] });
  clips = files.map((f) => prepareAudio(base, decodeWav(fs.readFileSync(f), f)));
}, 60_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Every frame of `samples` (frames that fit), through both extractors. */
function compareFrames(cfg: FeaturizeConfig, samples: Float32Array): { errors: number[]; rows: number } {
  configureMeyda(cfg);
  const ex = new FrameExtractor(cfg);
  const F = ex.dim;
  const fast: number[] = [];
  const ref: number[] = [];
  const row = new Float64Array(F);
  let rows = 0;
  for (let s = 0; s + cfg.frame_size <= samples.length; s += cfg.hop_size) {
    const frame = samples.slice(s, s + cfg.frame_size);
    ex.extract(frame, 0, row, 0);
    fast.push(...row);
    ref.push(...meydaFrame(frame));
    rows++;
  }
  return { errors: maxRelativeErrors(fast, ref, rows, F), rows };
}

describe('FrameExtractor', () => {
  it('FrameExtractor matches Meyda.extract on real speech for every feature (rel err <= 1e-4)', () => {
    const names = frameFeatureNames(base);
    const worst = new Array<number>(names.length).fill(0);
    let rows = 0;
    for (const clip of clips) {
      const r = compareFrames(base, clip);
      rows += r.rows;
      r.errors.forEach((e, i) => (worst[i] = Math.max(worst[i], e)));
    }
    expect(rows).toBeGreaterThan(100);
    const failing = names.filter((_, i) => !(worst[i] <= 1e-4)).map((n) => `${n}=${worst[names.indexOf(n)]}`);
    expect(failing).toEqual([]);
  });

  it.each([
    ['frame 256, 8 kHz, 20 mel, 12 mfcc', { sample_rate: 8000, frame_size: 256, n_mel: 20, n_mfcc: 12 }],
    ['frame 1024, 22.05 kHz, 40 mel', { sample_rate: 22050, frame_size: 1024, n_mel: 40, n_mfcc: 20 }],
    ['more MFCCs than mel bands', { n_mel: 10, n_mfcc: 13 }],
  ])('FrameExtractor matches Meyda with %s', (_name, over) => {
    const cfg = { ...base, ...over };
    // Speech at 16 kHz re-used as-is at another nominal rate: the spectra are still real speech.
    const r = compareFrames(cfg, clips[0]);
    expect(r.rows).toBeGreaterThan(10);
    expect(Math.max(...r.errors)).toBeLessThanOrEqual(1e-4);
  });

  it('FrameExtractor reports what Meyda reports on a silent frame (NaN moments included)', () => {
    configureMeyda(base);
    const ex = new FrameExtractor(base);
    const out = new Float64Array(ex.dim);
    const silent = new Float32Array(base.frame_size);
    ex.extract(silent, 0, out, 0);
    expect(maxRelativeErrors(out, meydaFrame(silent), 1, ex.dim)).toEqual(new Array(ex.dim).fill(0));
    expect(out.some((v) => Number.isNaN(v))).toBe(true);
  });
});

describe('extractFeatures', () => {
  it('extractFeatures equals the naive Meyda loop on whole clips (frames and summary)', () => {
    for (const clip of clips) {
      const fast = extractFeatures(base, clip);
      const ref = meydaClip(base, clip);
      expect(fast.nFrames).toBe(ref.nFrames);
      const T = frameCount(base);
      const F = frameFeatureNames(base).length;
      expect(Math.max(...maxRelativeErrors(fast.frames, ref.frames, T, F))).toBeLessThanOrEqual(1e-4);
      const D = summaryFeatureNames(base).length;
      expect(Math.max(...maxRelativeErrors(fast.summary, ref.summary, 1, D))).toBeLessThanOrEqual(1e-4);
    }
  });

  it('extractFeatures zero-pads a clip shorter than one frame and leaves later frames zero', () => {
    const short = clips[0].slice(4000, 4100);
    const r = extractFeatures(base, short);
    const F = frameFeatureNames(base).length;
    expect(r.nFrames).toBe(1);
    const padded = new Float32Array(base.frame_size);
    padded.set(short);
    const expected = meydaFrame(padded).map((v) => (Number.isFinite(v) ? v : 0));
    expect(Math.max(...maxRelativeErrors(r.frames.subarray(0, F), expected, 1, F))).toBeLessThanOrEqual(1e-4);
    expect(r.frames.subarray(F).every((v) => v === 0)).toBe(true);
    expect(r.summary.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('extractFeatures truncates to T frames and gives every value finite', () => {
    const long = new Float32Array(base.sample_rate * 5);
    for (let i = 0; i < long.length; i++) long[i] = clips[1][i % clips[1].length];
    const r = extractFeatures(
      base,
      prepareAudio(base, { sampleRate: 16000, channels: [long], bitDepth: '32f', length: long.length }),
    );
    expect(r.nFrames).toBe(frameCount(base));
    expect(r.frames.every((v) => Number.isFinite(v))).toBe(true);
  });
});

describe('featurizeAudio', () => {
  const audioOf = (channels: Float32Array[], sampleRate = 16000): DecodedAudio => ({
    sampleRate,
    channels,
    bitDepth: '32f',
    length: channels[0].length,
  });

  it('featurizeAudio replaces NaN and Inf samples by 0 before features', () => {
    const clean = clips[0].slice();
    const dirty = clean.slice();
    const zeroed = clean.slice();
    for (const i of [100, 5000, 9000]) {
      dirty[i] = i === 5000 ? Infinity : NaN;
      zeroed[i] = 0;
    }
    const a = featurizeAudio(base, audioOf([dirty]));
    expect(a.summary.every((v) => Number.isFinite(v))).toBe(true);
    expect(a.summary).toEqual(featurizeAudio(base, audioOf([zeroed])).summary);
    expect(dirty[100]).toBeNaN(); // the caller's audio is not mutated
  });

  it('featurizeAudio downmixes stereo (identical channels give the mono features)', () => {
    const x = clips[2];
    expect(featurizeAudio(base, audioOf([x, x])).summary).toEqual(featurizeAudio(base, audioOf([x])).summary);
  });

  it('featurizeAudio resamples other rates to the configured rate', () => {
    const x = clips[2];
    const at8k = prepareAudio({ ...base, sample_rate: 8000 }, audioOf([x]));
    const r = featurizeAudio(base, audioOf([at8k], 8000));
    // 8 kHz audio upsampled to 16 kHz keeps the frame count of the original clip.
    expect(r.nFrames).toBe(featurizeAudio(base, audioOf([x])).nFrames);
    // and has (almost) no energy above 4 kHz: the rolloff is below the 8 kHz band edge.
    const F = frameFeatureNames(base).length;
    const roll = frameFeatureNames(base).indexOf('spectralRolloff');
    const mean = r.summary[roll];
    expect(mean).toBeLessThan(4100);
    expect(mean).toBeGreaterThan(0);
    expect(F).toBeGreaterThan(roll);
  });
});
