import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeWav } from '../../lib/audio/wav.ts';
import { memoryOutput } from '../../lib/output.ts';
import type { StageContext } from '../../lib/types.ts';
import { synthesizeCorpus } from '../../stages/data/corpus.ts';
import { dataStage } from '../../stages/data/index.ts';
import { planSpeakers, planUtterances, WORDS } from '../../stages/data/prosody.ts';
import { resample } from '../../stages/data/augment.ts';
import { synthesize } from '../../stages/data/espeak-run.mjs';
import { loadEspeakModule, synthesizeAll } from '../../stages/data/espeak.ts';
import { espeakArgs } from '../../stages/data/prosody.ts';
import { createRng } from '../../stages/data/rng.ts';
import { EMOTIONS, paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

function tempRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-data-'));
  roots.push(root);
  return root;
}

function contextFor(root: string, params: unknown): StageContext {
  return {
    root,
    params: params as Record<string, unknown>,
    out: memoryOutput(),
    abs: (rel) => path.join(root, rel),
    signal: new AbortController().signal,
    inputs: {},
  };
}

/** Relative path -> sha256 of every file under dir. */
function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(child);
      else
        out[child] = createHash('sha256')
          .update(fs.readFileSync(path.join(dir, child)))
          .digest('hex');
    }
  };
  walk('');
  return out;
}

async function runData(
  data: Record<string, unknown>,
): Promise<{ root: string; tree: Record<string, string> }> {
  const root = tempRoot();
  const params = paramsSchema.parse({ data });
  const result = await dataStage(params).run(contextFor(root, params));
  expect(result && result.summary).toMatch(/utterances/);
  return { root, tree: hashTree(path.join(root, PATHS.demo)) };
}

describe('data stage', () => {
  it('data stage writes byte-identical files for the same params and different ones for another seed', async () => {
    const small = { speakers: 3, words: 1, seed: 11 };
    const a = await runData(small);
    const b = await runData(small);
    expect(Object.keys(a.tree)).toHaveLength(3 * EMOTIONS.length + 1);
    // The speakers' genders, for evaluate's gender slices (eSpeak NG +f / +m voice variants).
    expect(fs.readFileSync(path.join(a.root, PATHS.demo, 'speakers.csv'), 'utf8')).toBe(
      'speaker,gender\nS01,female\nS02,male\nS03,female\n',
    );
    expect(b.tree).toEqual(a.tree);
    // Another seed changes every file (here: the angry ones).
    const other = tempRoot();
    const rels = await synthesizeCorpus(other, { speakers: 3, words: 1, seed: 12, emotions: ['angry'] });
    expect(rels).toEqual(Object.keys(a.tree).filter((k) => k.includes('_angry/')));
    for (const rel of rels) expect(hashTree(other)[rel]).not.toBe(a.tree[rel]);
    // Rendering in this thread (no workers) gives the same bytes as the worker threads.
    const inThread = tempRoot();
    await synthesizeCorpus(inThread, { speakers: 3, words: 1, seed: 11, emotions: ['sad'], threads: 0 });
    for (const [rel, hash] of Object.entries(hashTree(inThread))) expect(hash).toBe(a.tree[rel]);

    // TESS layout, 16-bit mono PCM at data.sample_rate, audible speech of a plausible length.
    for (const rel of Object.keys(a.tree).filter((k) => k.endsWith('.wav'))) {
      expect(rel).toMatch(/^(S0[1-3])_([a-z]+)\/\1_[a-z]+_\2\.wav$/);
      const audio = decodeWav(fs.readFileSync(path.join(a.root, PATHS.demo, rel)), rel);
      expect(audio.sampleRate).toBe(16000);
      expect(audio.bitDepth).toBe('16');
      expect(audio.channels).toHaveLength(1);
      expect(audio.length / audio.sampleRate).toBeGreaterThan(0.6);
      expect(audio.length / audio.sampleRate).toBeLessThan(4);
      const x = audio.channels[0];
      const rms = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
      expect(20 * Math.log10(rms)).toBeGreaterThan(-45);
    }
    // No staging directory is left behind.
    expect(fs.readdirSync(path.join(a.root, 'out/data'))).toEqual(['demo']);
  });

  it('data corpus is written at another sample rate when asked', async () => {
    const dir = tempRoot();
    const [first] = await synthesizeCorpus(dir, {
      speakers: 3,
      words: 1,
      emotions: ['sad'],
      sampleRate: 22050,
    });
    expect(decodeWav(fs.readFileSync(path.join(dir, first))).sampleRate).toBe(22050);
  });
});

describe('data prosody plan', () => {
  const plan = planUtterances({ speakers: 8, words: 6, emotions: EMOTIONS, seed: 7, noise: 0.003 });
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const of = (emotion: string, key: 'pitch' | 'rate' | 'range' | 'amplitude'): number =>
    mean(plan.filter((u) => u.emotion === emotion).map((u) => u.prosody[key]));

  it('data plan expresses emotions through prosody in the expected directions', () => {
    expect(plan).toHaveLength(8 * 7 * 6);
    expect(of('sad', 'pitch')).toBeLessThan(of('neutral', 'pitch'));
    expect(of('fear', 'pitch')).toBeGreaterThan(of('neutral', 'pitch'));
    expect(of('surprise', 'range')).toBeGreaterThan(of('neutral', 'range'));
    expect(of('sad', 'rate')).toBeLessThan(of('angry', 'rate'));
    expect(of('angry', 'amplitude')).toBeGreaterThan(of('sad', 'amplitude'));
  });

  it('data plan varies between speakers and jitters every utterance, so classes overlap', () => {
    const speakers = planSpeakers(8, 7);
    expect(new Set(speakers.map((s) => s.voice)).size).toBe(8);
    const neutralPitch = speakers.map((s) => s.neutral.pitch);
    expect(Math.max(...neutralPitch) - Math.min(...neutralPitch)).toBeGreaterThan(15);
    // Within one speaker and emotion, words do not all get the same prosody.
    const cell = plan.filter((u) => u.speaker === 'S01' && u.emotion === 'happy');
    expect(new Set(cell.map((u) => `${u.prosody.pitch}/${u.prosody.rate}`)).size).toBeGreaterThan(1);
    // Some happy utterance is lower-pitched than some neutral one: not separable by pitch alone.
    const happyMin = Math.min(...plan.filter((u) => u.emotion === 'happy').map((u) => u.prosody.pitch));
    const neutralMax = Math.max(...plan.filter((u) => u.emotion === 'neutral').map((u) => u.prosody.pitch));
    expect(happyMin).toBeLessThan(neutralMax);
  });

  it('data plan rejects more words than the list holds', () => {
    expect(() =>
      planUtterances({ speakers: 3, words: WORDS.length + 1, emotions: EMOTIONS, seed: 1, noise: 0 }),
    ).toThrow(/data.words/);
    expect(WORDS.length).toBeGreaterThanOrEqual(200);
  });
});

describe('data helpers', () => {
  it('espeak session renders what a fresh instance renders, whatever the order or thread count', async () => {
    const plan = planUtterances({ speakers: 4, words: 1, emotions: ['angry', 'sad'], seed: 3, noise: 0 });
    const jobs = plan.map((u) => espeakArgs(u));
    const module = await loadEspeakModule();
    const fresh: string[] = [];
    for (const job of jobs)
      fresh.push(
        createHash('sha256')
          .update(await synthesize(module, job))
          .digest('hex'),
      );
    const digest = (wavs: Uint8Array[]): string[] =>
      wavs.map((w) => createHash('sha256').update(w).digest('hex'));
    expect(digest(await synthesizeAll(jobs, { threads: 0 }))).toEqual(fresh);
    expect(digest(await synthesizeAll([...jobs].reverse(), { threads: 2 })).reverse()).toEqual(fresh);
    expect(new Set(fresh).size).toBe(jobs.length);
  });

  it('rng gives the same sequence for the same seed and key, another for a new key', () => {
    const seq = (seed: number, key: string): number[] => {
      const r = createRng(seed, key);
      return Array.from({ length: 5 }, () => r.next());
    };
    expect(seq(1, 'a')).toEqual(seq(1, 'a'));
    expect(seq(1, 'a')).not.toEqual(seq(1, 'b'));
    expect(seq(1, 'a')).not.toEqual(seq(2, 'a'));
  });

  it('resample keeps a tone in band and its level', () => {
    const from = 22050;
    const x = Float32Array.from({ length: from }, (_, i) => Math.sin((2 * Math.PI * 440 * i) / from));
    const y = resample(x, from, 16000);
    expect(y.length).toBe(16000);
    const rms = (a: Float32Array): number =>
      Math.sqrt(a.slice(500, -500).reduce((s, v) => s + v * v, 0) / (a.length - 1000));
    expect(rms(y)).toBeCloseTo(Math.SQRT1_2, 2);
    // Zero crossings match 440 Hz over one second.
    let crossings = 0;
    for (let i = 1; i < y.length; i++) if (y[i - 1] < 0 !== y[i] < 0) crossings++;
    expect(Math.abs(crossings - 880)).toBeLessThanOrEqual(2);
  });
});
