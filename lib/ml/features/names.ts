/**
 * What the feature extractor produces for a `featurize` config: the names of the per-frame and
 * summary features, in vector order, and the frame and sample counts per clip.
 */

/** The `featurize` section of params.yaml (see lib/params-schema.ts). */
export interface FeaturizeConfig {
  sample_rate: number;
  frame_size: number;
  hop_size: number;
  n_mfcc: number;
  n_mel: number;
  max_seconds: number;
}

/** Scalar per-frame features, in frame-vector order after mfcc, mel and chroma. */
export const SCALAR_FEATURES = [
  'rms',
  'zcr',
  'spectralCentroid',
  'spectralRolloff',
  'spectralFlatness',
  'spectralSpread',
  'spectralSkewness',
  'spectralKurtosis',
  'spectralSlope',
  'spectralCrest',
  'loudness',
] as const;

export const CHROMA_BANDS = 12;
/** Meyda's default number of Bark bands for loudness. */
export const BARK_BANDS = 24;

/** Number of mel filters Meyda builds: max(melBands, numberOfMFCCCoefficients). */
export function melFilterCount(cfg: FeaturizeConfig): number {
  return Math.max(cfg.n_mel, cfg.n_mfcc);
}

/** Names of the F per-frame features: `mfcc_0..`, `mel_0..`, `chroma_0..11`, then SCALAR_FEATURES. */
export function frameFeatureNames(cfg: FeaturizeConfig): string[] {
  const names: string[] = [];
  for (let i = 0; i < cfg.n_mfcc; i++) names.push(`mfcc_${i}`);
  for (let i = 0; i < melFilterCount(cfg); i++) names.push(`mel_${i}`);
  for (let i = 0; i < CHROMA_BANDS; i++) names.push(`chroma_${i}`);
  names.push(...SCALAR_FEATURES);
  return names;
}

/** Names of the D summary features: `<frame feature>.mean`, `.std` for each, then `mfcc_<i>.dmean`. */
export function summaryFeatureNames(cfg: FeaturizeConfig): string[] {
  const frame = frameFeatureNames(cfg);
  return [
    ...frame.map((n) => `${n}.mean`),
    ...frame.map((n) => `${n}.std`),
    ...frame.slice(0, cfg.n_mfcc).map((n) => `${n}.dmean`),
  ];
}

/** T: frames kept per clip, `ceil(max_seconds · sample_rate / hop_size)`. */
export function frameCount(cfg: FeaturizeConfig): number {
  return Math.ceil((cfg.max_seconds * cfg.sample_rate) / cfg.hop_size);
}

/** Samples kept per clip after resampling. */
export function maxSamples(cfg: FeaturizeConfig): number {
  return Math.floor(cfg.max_seconds * cfg.sample_rate);
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}
