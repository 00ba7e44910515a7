/**
 * A small, fast fixture model for serving tests: the "model directory" holds `fixture.json`
 * (labels, a label shift, failure modes) and the loader computes two raw summary features
 * (zero-crossing rate and RMS) straight from the samples. A tone of frequency f lands on label
 * round(zcr * 70) % 7, so tests can drive a known class distribution; `shift` makes a
 * deliberately wrong model, `fail` one that throws, `delayMs` a slow one.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { downmix, encodeWav, type DecodedAudio } from '../../lib/audio/wav.ts';
import type { ModelLoader, Prediction, ServingModel } from '../../lib/serving/model.ts';
import type { ModelRef } from '../../lib/serving/endpoint.ts';
import type { Repo } from '../../lib/repo.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';

export const FIXTURE_LABELS = ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise'];

export interface FixtureSpec {
  /** Added to the predicted class index (mod 7): 0 = the reference model. */
  shift?: number;
  /** Throw on every prediction. */
  fail?: boolean;
  /** Busy-wait this long per prediction. */
  delayMs?: number;
  /**
   * Block the thread this long per prediction without using CPU (as a thread the scheduler
   * starves does); Infinity blocks for good.
   */
  sleepMs?: number;
  /** Length of the raw feature vector it expects (default 2; it reads only the first value). */
  featureDim?: number;
  /** Distinguishes otherwise equal models (changes the id). */
  tag?: string;
}

/** Writes a fixture model directory. */
export function writeFixtureModel(dir: string, spec: FixtureSpec = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  const json = { labels: FIXTURE_LABELS, ...spec, ...(spec.sleepMs === Infinity ? { sleepMs: -1 } : {}) };
  fs.writeFileSync(path.join(dir, 'fixture.json'), JSON.stringify(json));
}

function features(samples: Float32Array): Float32Array {
  let zc = 0;
  let sq = 0;
  for (let i = 0; i < samples.length; i++) {
    sq += samples[i] * samples[i];
    if (i > 0 && samples[i - 1] < 0 !== samples[i] < 0) zc++;
  }
  const n = Math.max(1, samples.length);
  return Float32Array.of(zc / n, Math.sqrt(sq / n));
}

/** Loader for fixture model directories (`ref` lets the shadow worker thread load them too). */
export const fixtureLoader: ModelLoader = Object.assign(
  async (dir: string) => {
    const text = fs.readFileSync(path.join(dir, 'fixture.json'), 'utf8');
    const spec = JSON.parse(text) as FixtureSpec & { labels: string[] };
    const labels = spec.labels;
    const predict = (raw: Float32Array): Prediction => {
      if (spec.fail) throw new Error('fixture model: failing on purpose');
      if (spec.delayMs) {
        const until = performance.now() + spec.delayMs;
        while (performance.now() < until) {
          /* busy wait: a slow model */
        }
      }
      if (spec.sleepMs) {
        // JSON has no Infinity: a negative value stands for it.
        const ms = spec.sleepMs < 0 ? Infinity : spec.sleepMs;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      }
      const center = raw[0] * 70;
      const logits = labels.map((_, k) => -Math.abs(center - k) * 4);
      const max = Math.max(...logits);
      const exp = logits.map((l) => Math.exp(l - max));
      const sum = exp.reduce((a, b) => a + b, 0);
      const shift = spec.shift ?? 0;
      const scores: Record<string, number> = {};
      labels.forEach((_, k) => (scores[labels[(k + shift) % labels.length]] = exp[k] / sum));
      let best = labels[0];
      for (const l of labels) if (scores[l] > scores[best]) best = l;
      return { label: best, scores, summary: Array.from(raw) };
    };
    const model: ServingModel = {
      id: createHash('sha256').update(text).digest('hex'),
      labels,
      featureDim: spec.featureDim ?? 2,
      predictAudio: (audio: DecodedAudio) => predict(features(downmix(audio.channels))),
      predictFeatures: predict,
    };
    return model;
  },
  { ref: { module: import.meta.url, export: 'fixtureLoader' } },
);

/** A 16-bit mono WAV tone; the fixture model maps frequency f (Hz) at 16 kHz to class round(f / 114). */
export function toneWav(freq: number, seconds = 0.5, sampleRate = 16000, amplitude = 0.5): Buffer {
  const n = Math.round(seconds * sampleRate);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / sampleRate + 0.1);
  return encodeWav([x], sampleRate);
}

/** The tone frequency that the reference fixture model classifies as class `k`. */
export function freqForClass(k: number, sampleRate = 16000): number {
  // zcr ≈ 2f / sr, and class = round(zcr * 70).
  return ((k + 0.05) * sampleRate) / (2 * 70);
}

/**
 * Writes a fixture model to `out/model` in `repo`, commits it to the repository's
 * content-addressed cache (as the train stage's outs are), removes the working copy, and
 * returns the artifact ref the lockfile would pin.
 */
export async function commitFixtureModel(repo: Repo, spec: FixtureSpec = {}): Promise<ModelRef> {
  const dir = path.join(repo.root, 'out', 'model');
  fs.rmSync(dir, { recursive: true, force: true });
  writeFixtureModel(dir, spec);
  const ref = await commitArtifact(repo, 'out/model');
  fs.rmSync(dir, { recursive: true, force: true });
  return ref;
}
