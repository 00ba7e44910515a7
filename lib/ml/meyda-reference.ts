/**
 * Meyda itself, called frame by frame: the reference the fast extractor (`features.ts`) is
 * tested and benchmarked against. Same framing, padding, sanitising and summary as
 * `extractFeatures`, only the per-frame features come from `Meyda.extract`.
 *
 * Relative error, per feature f: |a - b| / max(|b|, eps_f) with
 * eps_f = 1e-6 · max_t |b_f(t)| + 1e-12, i.e. values below a millionth of the feature's largest
 * magnitude on the audio compared are judged on an absolute scale (near-zero MFCCs, silent-frame
 * moments), everything else relatively.
 */
import meydaModule from 'meyda';
import type { ClipFeatures, FeaturizeConfig } from './features.ts';
import { frameCount, frameFeatureNames, SCALAR_FEATURES, summarize } from './features.ts';

/** The part of Meyda's global object used here (its published types describe the ESM build). */
interface MeydaGlobal {
  bufferSize: number;
  sampleRate: number;
  melBands: number;
  numberOfMFCCCoefficients: number;
  windowingFunction: string;
  extract(features: string[], signal: Float32Array): Record<string, unknown>;
}

const Meyda = meydaModule as unknown as MeydaGlobal;
const MEYDA_FEATURES = ['mfcc', 'melBands', 'chroma', ...SCALAR_FEATURES];

/** Configures the global Meyda object for `cfg` (buffer size, rate, mel bands, MFCCs, Hann window). */
export function configureMeyda(cfg: FeaturizeConfig): void {
  Meyda.bufferSize = cfg.frame_size;
  Meyda.sampleRate = cfg.sample_rate;
  Meyda.melBands = cfg.n_mel;
  Meyda.numberOfMFCCCoefficients = cfg.n_mfcc;
  Meyda.windowingFunction = 'hanning';
  // Meyda caches its filter banks and only rebuilds them when their band count changes, not when
  // the buffer size or sample rate does: drop them so they are rebuilt for this config.
  const cache = Meyda as unknown as Record<string, unknown>;
  for (const key of ['barkScale', 'melFilterBank', 'chromaFilterBank']) delete cache[key];
}

/** The F frame features of one N-sample frame, by Meyda, in `frameFeatureNames` order (NaN kept). */
export function meydaFrame(frame: Float32Array): number[] {
  const r = Meyda.extract(MEYDA_FEATURES, frame);
  const scalars = SCALAR_FEATURES.map((k) =>
    k === 'loudness' ? (r.loudness as { total: number }).total : (r[k] as number),
  );
  return [...(r.mfcc as number[]), ...(r.melBands as number[]), ...(r.chroma as number[]), ...scalars];
}

/**
 * The naive clip path: a loop calling `Meyda.extract` on each frame of prepared samples
 * (see `prepareAudio`), then the same sanitising and summary as the fast path.
 */
export function meydaClip(cfg: FeaturizeConfig, samples: Float32Array): ClipFeatures {
  configureMeyda(cfg);
  const n = cfg.frame_size;
  const hop = cfg.hop_size;
  const T = frameCount(cfg);
  const F = frameFeatureNames(cfg).length;
  const nFrames = Math.min(T, Math.max(1, Math.ceil(samples.length / hop)));
  const frames = new Float32Array(T * F);
  for (let t = 0; t < nFrames; t++) {
    const frame = new Float32Array(n);
    frame.set(samples.subarray(t * hop, Math.min(samples.length, t * hop + n)));
    const values = meydaFrame(frame);
    for (let f = 0; f < F; f++) frames[t * F + f] = Number.isFinite(values[f]) ? values[f] : 0;
  }
  return { frames, summary: summarize(cfg, frames, nFrames, F), nFrames };
}

/**
 * Largest relative error per column between `actual` and `reference` (rows×cols, row-major),
 * with eps_f as documented above. NaN matches NaN; NaN against a number is an error of Infinity.
 */
export function maxRelativeErrors(
  actual: ArrayLike<number>,
  reference: ArrayLike<number>,
  rows: number,
  cols: number,
): number[] {
  const errors = new Array<number>(cols).fill(0);
  for (let c = 0; c < cols; c++) {
    let scale = 0;
    for (let r = 0; r < rows; r++) {
      const b = Math.abs(reference[r * cols + c]);
      if (Number.isFinite(b) && b > scale) scale = b;
    }
    const eps = 1e-6 * scale + 1e-12;
    for (let r = 0; r < rows; r++) {
      const a = actual[r * cols + c];
      const b = reference[r * cols + c];
      let e: number;
      if (Number.isNaN(a) || Number.isNaN(b)) e = Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity;
      else if (a === b) e = 0;
      else e = Math.abs(a - b) / Math.max(Math.abs(b), eps);
      if (e > errors[c]) errors[c] = e;
    }
  }
  return errors;
}
