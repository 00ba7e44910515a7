/**
 * The per-clip feature path shared by featurize and serving (`featurizeAudio`): decode (caller)
 * → downmix → NaN/Inf → 0 → resample → truncate to max_seconds → frame (hop `hop_size`, last
 * frames zero-padded, at least one frame) → per-frame features (non-finite → 0) → summary (mean,
 * std of every frame feature; mean |Δ| of each MFCC).
 */
import type { DecodedAudio } from '../../audio/wav.ts';
import { downmix } from '../../audio/wav.ts';
import { resample } from '../../audio/resample.ts';
import { FrameExtractor } from './frame-extractor.ts';
import type { FeaturizeConfig } from './names.ts';
import { frameCount, maxSamples } from './names.ts';

/** Per-clip features: raw (unnormalised) T×F frames and D summary. */
export interface ClipFeatures {
  /** T×F float32, frames past the clip's end are zero rows. */
  frames: Float32Array;
  /** D float32 summary vector (mean, std, mfcc Δ-mean). */
  summary: Float32Array;
  /** Frames that carry audio (the rest of the T are zero padding). */
  nFrames: number;
}

/**
 * Downmix, replace non-finite samples by 0, resample to `cfg.sample_rate`, truncate to max_seconds.
 * The result may share memory with `audio` (never written to): read it, do not modify it.
 */
export function prepareAudio(cfg: FeaturizeConfig, audio: DecodedAudio): Float32Array {
  const mono = audio.channels.length === 0 ? new Float32Array(0) : downmix(audio.channels);
  // downmix may return the caller's channel: it is copied only when it has a sample to clean, so
  // the input is never mutated and a clean mono clip (every served request) is not copied.
  let clean = mono;
  for (let i = 0; i < clean.length; i++) {
    if (Number.isFinite(clean[i])) continue;
    if (clean === audio.channels[0]) clean = clean.slice();
    clean[i] = 0;
  }
  const limit = maxSamples(cfg);
  if (audio.sampleRate === cfg.sample_rate) return clean.length > limit ? clean.subarray(0, limit) : clean;
  return resample(clean, audio.sampleRate, cfg.sample_rate, { maxLength: limit });
}

/** Features of prepared mono samples at `cfg.sample_rate` (see `prepareAudio`). */
export function extractFeatures(
  cfg: FeaturizeConfig,
  samples: Float32Array,
  extractor: FrameExtractor = new FrameExtractor(cfg),
): ClipFeatures {
  const n = cfg.frame_size;
  const hop = cfg.hop_size;
  const T = frameCount(cfg);
  const F = extractor.dim;
  const nFrames = Math.min(T, Math.max(1, Math.ceil(samples.length / hop)));
  const frames = new Float32Array(T * F);
  const row = new Float64Array(F);
  // Frames that run past the clip's end (and a clip shorter than one frame) read a zero-padded
  // copy of their own samples; the others read the clip in place.
  const tail = new Float32Array(n);
  for (let t = 0; t < nFrames; t++) {
    const start = t * hop;
    if (start + n <= samples.length) extractor.extract(samples, start, row, 0);
    else {
      tail.fill(0);
      tail.set(samples.subarray(start, Math.min(samples.length, start + n)));
      extractor.extract(tail, 0, row, 0);
    }
    for (let f = 0; f < F; f++) frames[t * F + f] = Number.isFinite(row[f]) ? row[f] : 0;
  }
  return { frames, summary: summarize(cfg, frames, nFrames, F), nFrames };
}

/** Mean and population std of each frame feature over the clip's frames, then mean |Δ| of each MFCC. */
export function summarize(
  cfg: FeaturizeConfig,
  frames: Float32Array,
  nFrames: number,
  F: number,
): Float32Array {
  const summary = new Float32Array(2 * F + cfg.n_mfcc);
  for (let f = 0; f < F; f++) {
    let sum = 0;
    for (let t = 0; t < nFrames; t++) sum += frames[t * F + f];
    const mean = sum / nFrames;
    let sq = 0;
    for (let t = 0; t < nFrames; t++) {
      const d = frames[t * F + f] - mean;
      sq += d * d;
    }
    summary[f] = mean;
    summary[F + f] = Math.sqrt(sq / nFrames);
  }
  for (let c = 0; c < cfg.n_mfcc; c++) {
    let sum = 0;
    for (let t = 1; t < nFrames; t++) sum += Math.abs(frames[t * F + c] - frames[(t - 1) * F + c]);
    summary[2 * F + c] = nFrames > 1 ? sum / (nFrames - 1) : 0;
  }
  return summary;
}

const extractors = new Map<string, FrameExtractor>();

/**
 * A shared extractor for `cfg` (its tables cost about a millisecond to build; serving calls
 * this per request). Safe to share: `extract` is synchronous and finishes before any other call.
 */
export function extractorFor(cfg: FeaturizeConfig): FrameExtractor {
  const key = [cfg.sample_rate, cfg.frame_size, cfg.hop_size, cfg.n_mfcc, cfg.n_mel].join(',');
  let ex = extractors.get(key);
  if (!ex) {
    if (extractors.size >= 8) extractors.clear();
    ex = new FrameExtractor(cfg);
    extractors.set(key, ex);
  }
  return ex;
}

/** The whole per-clip path: prepareAudio then extractFeatures. Featurize and serving both call this. */
export function featurizeAudio(
  cfg: FeaturizeConfig,
  audio: DecodedAudio,
  extractor: FrameExtractor = extractorFor(cfg),
): ClipFeatures {
  return extractFeatures(cfg, prepareAudio(cfg, audio), extractor);
}
