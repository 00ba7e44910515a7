/**
 * A tiny real demo corpus for tests: the data stage's own synthesizer (eSpeak NG + prosody +
 * augmentation) with small sizes, in the TESS layout
 * `<dir>/<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav` (16-bit mono PCM, 16 kHz).
 * 4 speakers × 7 emotions × 1 word = 28 files in a few seconds.
 */
import path from 'node:path';
import { synthesizeCorpus } from '../../stages/data/corpus.ts';

export interface TinyCorpusOptions {
  /** Speakers S01.. (default 4). */
  speakers?: number;
  /** Words per speaker and emotion (default 1). */
  words?: number;
  /** Emotions (default all seven). */
  emotions?: string[];
  /** Seed (default 7). */
  seed?: number;
  /** Sample rate (default 16000). */
  sampleRate?: number;
}

/** Writes the corpus into `dir` (created if needed); returns the absolute file paths, sorted. */
export async function makeTinyCorpus(dir: string, options: TinyCorpusOptions = {}): Promise<string[]> {
  const rel = await synthesizeCorpus(dir, {
    speakers: options.speakers ?? 4,
    words: options.words ?? 1,
    emotions: options.emotions,
    seed: options.seed ?? 7,
    sampleRate: options.sampleRate ?? 16000,
  });
  return rel.map((p) => path.join(dir, p));
}
