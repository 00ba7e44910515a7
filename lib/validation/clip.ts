/**
 * The per-clip checks, one home for training and serving: statistics of one decoded clip
 * (duration, loudness, clipping, silence, format, non-finite samples) and the anomalies they
 * show against an input schema. The validate stage runs them over the training data; the
 * server, `lockstep predict` and `batch-predict` run them on every clip against the schema the
 * answering model was trained with.
 */
import { AudioDecodeError, decodeWav, type DecodedAudio } from '../audio/wav.ts';
import type { Anomaly, AnomalyKind, Severity } from './anomaly.ts';
import type { InputChecks } from './schema.ts';

/** What the checks measure of one clip. */
export interface ClipStats {
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

export const FLOOR_DBFS = -200;
const round = (x: number, digits = 6): number => Number(x.toFixed(digits));

/** What the passes over a clip's samples add up (sum of squares of the finite ones, and counts). */
interface ClipSums {
  sum: number;
  finite: number;
  peak: number;
  clipped: number;
  nonFinite: number;
  windows: number;
  silent: number;
}

/**
 * Sums of a mono clip in one pass, in the order the multi-channel passes below take them (so the
 * figures are bit-identical). A function of its own over one Float32Array, called with the same types on
 * every request, so V8 optimizes it whole after the first calls rather than entering optimized
 * code mid-loop and deoptimizing on the lines after it (a fresh server ran this 2-4x slower for
 * its first thousand requests).
 */
function measureMono(ch: Float32Array, n: number, win: number, threshold: number): ClipSums {
  let sum = 0;
  let finite = 0;
  let peak = 0;
  let clipped = 0;
  let nonFinite = 0;
  let windows = 0;
  let silent = 0;
  for (let start = 0; start < n; start += win) {
    const end = Math.min(n, start + win);
    let s = 0;
    let c = 0;
    for (let i = start; i < end; i++) {
      const v = ch[i];
      if (!Number.isFinite(v)) {
        nonFinite++;
        continue;
      }
      const a = Math.abs(v);
      const sq = v * v;
      sum += sq;
      s += sq;
      finite++;
      c++;
      if (a > peak) peak = a;
      if (a >= 0.999) clipped++;
    }
    windows++;
    if (c === 0 || Math.sqrt(s / c) < threshold) silent++;
  }
  return { sum, finite, peak, clipped, nonFinite, windows, silent };
}

/** Measures a decoded clip; `silenceDbfs` sets the level below which a 20 ms window is silent. */
export function measureClip(audio: DecodedAudio, silenceDbfs: number): ClipStats {
  const n = audio.length;
  // Silence per 20 ms window of the channel mean.
  const win = Math.max(1, Math.round(audio.sampleRate * 0.02));
  const threshold = 10 ** (silenceDbfs / 20);
  let sum = 0;
  let finite = 0;
  let peak = 0;
  let clipped = 0;
  let nonFinite = 0;
  let windows = 0;
  let silent = 0;
  const mono = audio.channels.length === 1 ? audio.channels[0] : undefined;
  // The fused pass visits samples only through its windows: with a NaN window (a NaN sample
  // rate) it would visit none, where the general passes still count every sample.
  if (mono instanceof Float32Array && mono.length === n && win >= 1) {
    ({ sum, finite, peak, clipped, nonFinite, windows, silent } = measureMono(mono, n, win, threshold));
  } else {
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
  }
  const rms = finite ? Math.sqrt(sum / finite) : 0;
  return {
    duration: round(audio.sampleRate ? n / audio.sampleRate : 0),
    sampleRate: audio.sampleRate,
    channels: audio.channels.length,
    bitDepth: audio.bitDepth,
    rmsDbfs: rms > 0 ? round(Math.max(FLOOR_DBFS, 20 * Math.log10(rms)), 3) : FLOOR_DBFS,
    peak: round(Math.min(peak, 1e6)),
    clippingRatio: round(finite ? clipped / finite : 0),
    silenceRatio: round(windows ? silent / windows : 1),
    nonFinite,
  };
}

/** The anomaly of a clip the decoder refused; `name` is the prefix its message starts with. */
export function unreadableAnomaly(message: string, name: string): Anomaly {
  // The decoder's message starts with the clip's name, which the caller already reports.
  const first = message.split('\n')[0];
  const detail = first.startsWith(`${name}: `) ? first.slice(name.length + 2) : first;
  return { severity: 'error', kind: 'unreadable', detail: detail || 'cannot be decoded' };
}

/** Anomalies of one measured clip against `checks` (errors first, in a fixed order). */
export function clipAnomalies(stats: ClipStats, checks: InputChecks): Anomaly[] {
  const { limits, data: schema } = checks;
  const out: Anomaly[] = [];
  const add = (severity: Severity, kind: AnomalyKind, detail: string): void => {
    out.push({ severity, kind, detail });
  };
  if (stats.nonFinite > 0) add('error', 'non_finite', `${stats.nonFinite} NaN or infinite samples`);
  if (stats.duration < limits.min_duration_s) {
    add(
      'error',
      'too_short',
      `${stats.duration.toFixed(3)} s is shorter than validate.min_duration_s ${limits.min_duration_s} s`,
    );
  } else if (stats.duration > limits.max_duration_s) {
    add(
      'warning',
      'too_long',
      `${stats.duration.toFixed(2)} s is longer than validate.max_duration_s ${limits.max_duration_s} s (featurize truncates it)`,
    );
  } else if (schema && (stats.duration < schema.duration.min || stats.duration > schema.duration.max)) {
    add(
      'warning',
      'duration_outside_schema',
      `${stats.duration.toFixed(2)} s is outside the schema range ${schema.duration.min}..${schema.duration.max} s`,
    );
  }
  if (stats.duration > 0 && stats.rmsDbfs < limits.silence_dbfs) {
    add(
      'error',
      'silent',
      `RMS ${stats.rmsDbfs.toFixed(1)} dBFS is below validate.silence_dbfs ${limits.silence_dbfs} dBFS`,
    );
  }
  if (stats.clippingRatio > limits.max_clipping_ratio) {
    add(
      'warning',
      'clipped',
      `${(stats.clippingRatio * 100).toFixed(2)}% of samples at full scale (limit ${(limits.max_clipping_ratio * 100).toFixed(2)}%)`,
    );
  }
  if (!schema) return out;
  if (!schema.sample_rates.includes(stats.sampleRate)) {
    add(
      'warning',
      'sample_rate_mismatch',
      `${stats.sampleRate} Hz, expected ${schema.sample_rates.join(' or ')} Hz (featurize resamples it)`,
    );
  }
  if (!schema.channels.includes(stats.channels)) {
    add(
      'warning',
      'channel_mismatch',
      `${stats.channels} channels, expected ${schema.channels.join(' or ')} (featurize downmixes it)`,
    );
  }
  if (!schema.bit_depths.includes(stats.bitDepth)) {
    add(
      'warning',
      'bit_depth_mismatch',
      `sample format "${stats.bitDepth}", expected ${schema.bit_depths.join(' or ')} (featurize converts it)`,
    );
  }
  return out;
}

/** What the checks found in a decoded clip (plain data: it crosses worker threads). */
export interface ClipCheck {
  stats: ClipStats;
  anomalies: Anomaly[];
}

/** Measures and checks a decoded clip. */
export function inspectDecoded(audio: DecodedAudio, checks: InputChecks): ClipCheck {
  const stats = measureClip(audio, checks.limits.silence_dbfs);
  return { stats, anomalies: clipAnomalies(stats, checks) };
}

/** One clip after the checks: its audio when it decoded, and what the checks found. */
export interface InspectedClip {
  audio?: DecodedAudio;
  stats?: ClipStats;
  anomalies: Anomaly[];
}

/**
 * Decodes and checks one clip's bytes. `name` prefixes decoder messages (and is stripped from
 * the anomaly); `decode` defaults to `decodeWav` (the server passes its faster equivalent).
 * Never throws for bad audio: an undecodable clip is an `unreadable` anomaly.
 */
export function inspectClip(
  bytes: Uint8Array,
  name: string,
  checks: InputChecks,
  decode: (bytes: Uint8Array, name: string) => DecodedAudio = decodeWav,
): InspectedClip {
  let audio: DecodedAudio;
  try {
    audio = decode(bytes, name);
  } catch (err) {
    if (!(err instanceof AudioDecodeError)) throw err;
    return { anomalies: [unreadableAnomaly(err.message, name)] };
  }
  return { audio, ...inspectDecoded(audio, checks) };
}

/** What happens to a clip with error anomalies: refused (default), or predicted and flagged. */
export type OnErrorAnomaly = 'reject' | 'flag';

/**
 * Whether a checked clip is predicted. Warnings never stop a prediction; errors do unless the
 * environment says `flag`, and a clip with no audio (unreadable, or no samples) is refused
 * either way, since there is nothing to predict from.
 */
export function shouldPredict(
  clip: { stats?: ClipStats; anomalies: readonly Anomaly[] },
  onError: OnErrorAnomaly,
): boolean {
  if (!clip.stats || clip.stats.duration === 0) return false;
  if (!clip.anomalies.some((a) => a.severity === 'error')) return true;
  return onError === 'flag';
}
