/**
 * Synthesizes the demo corpus into a directory in the TESS layout
 * (`<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav`, 16-bit mono PCM), with a `speakers.csv`
 * (speaker, gender) that ingest reads for evaluate's gender slices.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EMOTIONS } from '../../lib/params-schema.ts';
import { synthesizeAll } from './espeak.ts';
import { espeakArgs, planSpeakers, planUtterances } from './prosody.ts';
import { renderSpec } from './render.ts';

export interface CorpusOptions {
  /** Synthetic speakers (default 10, as `data.speakers`). */
  speakers?: number;
  /** Words per speaker and emotion (default 5, as `data.words`). */
  words?: number;
  /** Emotions (default all seven). */
  emotions?: readonly string[];
  /** Seed for prosody jitter, gain and noise (default 7). */
  seed?: number;
  /** Noise RMS relative to full scale (default 0.003). */
  noise?: number;
  /** Output sample rate (default 16000). */
  sampleRate?: number;
  /** Worker threads for eSpeak NG (default: cores, at most 4). */
  threads?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/**
 * Writes the corpus under `dir` and returns the relative paths written, sorted.
 * The same options always give byte-identical files.
 */
export async function synthesizeCorpus(dir: string, options: CorpusOptions = {}): Promise<string[]> {
  const sampleRate = options.sampleRate ?? 16000;
  const plan = planUtterances({
    speakers: options.speakers ?? 10,
    words: options.words ?? 5,
    emotions: options.emotions ?? EMOTIONS,
    seed: options.seed ?? 7,
    noise: options.noise ?? 0.003,
  });
  const files = await synthesizeAll(
    plan.map((u) => ({ args: espeakArgs(u), render: renderSpec(u, sampleRate) })),
    { threads: options.threads, onProgress: options.onProgress, signal: options.signal },
  );
  const folders = new Set(plan.map((u) => path.dirname(u.path)));
  for (const folder of folders) await mkdir(path.join(dir, folder), { recursive: true });
  await Promise.all(plan.map((u, i) => writeFile(path.join(dir, u.path), files[i])));
  const speakers = planSpeakers(options.speakers ?? 10, options.seed ?? 7);
  await writeFile(
    path.join(dir, 'speakers.csv'),
    ['speaker,gender', ...speakers.map((s) => `${s.id},${s.female ? 'female' : 'male'}`)].join('\n') + '\n',
  );
  return plan.map((u) => u.path).sort();
}
