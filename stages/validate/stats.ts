/**
 * Statistics per file and per split (like TFX StatisticsGen): duration, loudness, clipping and
 * silence ratios, format, non-finite samples, label counts.
 */
import { decodeWav } from '../../lib/audio/wav.ts';
import { FLOOR_DBFS, measureClip, type ClipStats } from '../../lib/validation/clip.ts';

/** A manifest file's clip statistics (the per-clip part is `lib/validation/clip.ts`'s). */
export interface FileStats extends ClipStats {
  path: string;
  label: string;
  speaker: string;
  split: string;
  readable: boolean;
  error?: string;
}

export interface SplitStats {
  files: number;
  readable: number;
  speakers: string[];
  labelCounts: Record<string, number>;
  duration: { min: number; mean: number; max: number; total: number };
  rmsDbfs: { min: number; mean: number; max: number };
  clippingRatio: { mean: number; max: number };
  silenceRatio: { mean: number; max: number };
  sampleRates: Record<string, number>;
  channels: Record<string, number>;
}

const round = (x: number, digits = 6): number => Number(x.toFixed(digits));

/** Decodes one file's bytes and measures it; never throws (an unreadable file gets `error`). */
export function measureFile(
  bytes: Uint8Array,
  meta: { path: string; label: string; speaker: string; split: string },
  silenceDbfs: number,
): FileStats {
  const base: FileStats = {
    ...meta,
    readable: false,
    duration: 0,
    sampleRate: 0,
    channels: 0,
    bitDepth: '',
    rmsDbfs: FLOOR_DBFS,
    peak: 0,
    clippingRatio: 0,
    silenceRatio: 0,
    nonFinite: 0,
  };
  let audio;
  try {
    audio = decodeWav(bytes, meta.path);
  } catch (err) {
    return { ...base, error: (err as Error).message.split('\n')[0] };
  }
  return { ...base, ...measureClip(audio, silenceDbfs), readable: true };
}

function summarize(xs: number[]): { min: number; mean: number; max: number } {
  if (xs.length === 0) return { min: 0, mean: 0, max: 0 };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const x of xs) {
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  return { min: round(min), mean: round(sum / xs.length), max: round(max) };
}

function countBy(xs: (string | number)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of [...xs].map(String).sort()) out[x] = (out[x] ?? 0) + 1;
  return out;
}

/** Aggregates file statistics (one split, or all files). */
export function aggregateStats(files: FileStats[]): SplitStats {
  const ok = files.filter((f) => f.readable);
  const d = summarize(ok.map((f) => f.duration));
  const total = ok.reduce((a, f) => a + f.duration, 0);
  const clip = summarize(ok.map((f) => f.clippingRatio));
  const sil = summarize(ok.map((f) => f.silenceRatio));
  return {
    files: files.length,
    readable: ok.length,
    speakers: [...new Set(files.map((f) => f.speaker))].sort(),
    labelCounts: countBy(files.map((f) => f.label)),
    duration: { ...d, total: round(total, 3) },
    rmsDbfs: summarize(ok.map((f) => f.rmsDbfs)),
    clippingRatio: { mean: clip.mean, max: clip.max },
    silenceRatio: { mean: sil.mean, max: sil.max },
    sampleRates: countBy(ok.map((f) => f.sampleRate)),
    channels: countBy(ok.map((f) => f.channels)),
  };
}
