/**
 * Statistics per file and per split (like TFX StatisticsGen): duration, loudness, clipping and
 * silence ratios, format, non-finite samples, label counts.
 */
import { decodeWav } from '../../lib/audio/wav.ts';

export interface FileStats {
  path: string;
  label: string;
  speaker: string;
  split: string;
  readable: boolean;
  error?: string;
  duration: number;
  sampleRate: number;
  channels: number;
  bitDepth: string;
  /** RMS of the finite samples over all channels, dBFS (-Infinity is written as -200). */
  rmsDbfs: number;
  peak: number;
  /** Fraction of samples at or above full scale (|x| >= 0.999). */
  clippingRatio: number;
  /** Fraction of 20 ms windows whose RMS is below the silence threshold. */
  silenceRatio: number;
  /** NaN or ±Infinity samples. */
  nonFinite: number;
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

const FLOOR_DB = -200;
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
    rmsDbfs: FLOOR_DB,
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
  const n = audio.length;
  let sum = 0;
  let finite = 0;
  let peak = 0;
  let clipped = 0;
  let nonFinite = 0;
  for (const ch of audio.channels) {
    for (let i = 0; i < ch.length; i++) {
      const v = ch[i];
      if (!Number.isFinite(v)) {
        nonFinite++;
        continue;
      }
      const a = Math.abs(v);
      sum += v * v;
      finite++;
      if (a > peak) peak = a;
      if (a >= 0.999) clipped++;
    }
  }
  // Silence per 20 ms window of the channel mean.
  const win = Math.max(1, Math.round(audio.sampleRate * 0.02));
  const threshold = 10 ** (silenceDbfs / 20);
  let windows = 0;
  let silent = 0;
  for (let start = 0; start < n; start += win) {
    const end = Math.min(n, start + win);
    let s = 0;
    let c = 0;
    for (const ch of audio.channels) {
      for (let i = start; i < end; i++) {
        if (Number.isFinite(ch[i])) {
          s += ch[i] * ch[i];
          c++;
        }
      }
    }
    windows++;
    if (c === 0 || Math.sqrt(s / c) < threshold) silent++;
  }
  const rms = finite ? Math.sqrt(sum / finite) : 0;
  return {
    ...base,
    readable: true,
    duration: round(audio.sampleRate ? n / audio.sampleRate : 0),
    sampleRate: audio.sampleRate,
    channels: audio.channels.length,
    bitDepth: audio.bitDepth,
    rmsDbfs: rms > 0 ? round(Math.max(FLOOR_DB, 20 * Math.log10(rms)), 3) : FLOOR_DB,
    peak: round(Math.min(peak, 1e6)),
    clippingRatio: round(finite ? clipped / finite : 0),
    silenceRatio: round(windows ? silent / windows : 1),
    nonFinite,
  };
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
