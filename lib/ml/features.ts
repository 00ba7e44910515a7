/**
 * Fast, Meyda-equivalent audio features. One radix-2 FFT per frame with precomputed twiddles,
 * window, mel/chroma filter banks and DCT matrix; every feature follows Meyda 5.6's exact
 * definitions (Hann window of length N with denominator N-1, amplitude spectrum of N/2 bins held
 * as float32, power spectrum = amplitude², mel bands accumulated in float32 then log(x+1), MFCC =
 * unnormalised DCT-II ×2, chroma normalised by its maximum, rolloff at 0.99, RMS and ZCR on the
 * windowed frame). `lib/ml/meyda-reference.ts` runs Meyda itself on the same frames for tests
 * and the benchmark.
 *
 * Pipeline for one clip (shared by featurize and serving through `featurizeAudio`):
 * decode (caller) → downmix → NaN/Inf → 0 → resample → truncate to max_seconds → frame
 * (hop `hop_size`, last frames zero-padded, at least one frame) → per-frame features
 * (non-finite → 0) → summary (mean, std of every frame feature; mean |Δ| of each MFCC).
 */
import type { DecodedAudio } from '../audio/wav.ts';
import { downmix } from '../audio/wav.ts';
import { resample } from '../audio/resample.ts';

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
const BARK_BANDS = 24;

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

// ---------------------------------------------------------------------------------------------
// Precomputed tables, built exactly as Meyda builds them (including its float32 intermediates).

function hanning(size: number): Float32Array {
  const w = new Float32Array(size);
  for (let i = 0; i < size; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (size - 1));
  return w;
}

const freqToMel = (f: number): number => 1125 * Math.log(1 + f / 700);
const melToFreq = (m: number): number => 700 * (Math.exp(m / 1125) - 1);

/** Sparse mel filters: for each filter, the first bin and its weights (Meyda's createMelFilterBank). */
function melFilterBank(
  numFilters: number,
  sampleRate: number,
  bufferSize: number,
): { start: number; weights: Float64Array }[] {
  const melValues = new Float32Array(numFilters + 2);
  const melValuesInFreq = new Float32Array(numFilters + 2);
  const range = freqToMel(sampleRate / 2) - freqToMel(0);
  const valueToAdd = range / (numFilters + 1);
  const bins: number[] = new Array(numFilters + 2);
  for (let i = 0; i < melValues.length; i++) {
    melValues[i] = i * valueToAdd;
    melValuesInFreq[i] = melToFreq(melValues[i]);
    bins[i] = Math.floor(((bufferSize + 1) * melValuesInFreq[i]) / sampleRate);
  }
  const half = bufferSize / 2; // Meyda's melBands only reads bins < N/2
  const filters: { start: number; weights: Float64Array }[] = [];
  for (let j = 0; j < numFilters; j++) {
    const dense = new Float64Array(bufferSize / 2 + 1);
    for (let i = bins[j]; i < bins[j + 1]; i++) dense[i] = (i - bins[j]) / (bins[j + 1] - bins[j]);
    for (let i = bins[j + 1]; i < bins[j + 2]; i++)
      dense[i] = (bins[j + 2] - i) / (bins[j + 2] - bins[j + 1]);
    let lo = 0;
    while (lo < half && dense[lo] === 0) lo++;
    let hi = half;
    while (hi > lo && dense[hi - 1] === 0) hi--;
    filters.push({ start: lo, weights: dense.slice(lo, hi) });
  }
  return filters;
}

/** Meyda's createChromaFilterBank (centerOctave 5, octaveWidth 2, baseC, A440), rows of N/2+1. */
function chromaFilterBank(numFilters: number, sampleRate: number, bufferSize: number): Float64Array[] {
  const numOutputBins = Math.floor(bufferSize / 2) + 1;
  const hzToOctaves = (freq: number): number => Math.log2((16 * freq) / 440);
  const frequencyBins = Array.from({ length: bufferSize }, (_, i) =>
    i === 0 ? 0 : numFilters * hzToOctaves((sampleRate * i) / bufferSize),
  );
  frequencyBins[0] = frequencyBins[1] - 1.5 * numFilters;
  // Meyda's `Math.max(v - prev), 1)` passes 1 as map's thisArg: the width is just the difference.
  const binWidthBins = [...frequencyBins.slice(1).map((v, i) => v - frequencyBins[i]), 1];
  const halfNumFilters = Math.round(numFilters / 2);
  let weights = Array.from({ length: numFilters }, (_, i) =>
    frequencyBins.map((frq, j) => {
      const peak = ((10 * numFilters + halfNumFilters + frq - i) % numFilters) - halfNumFilters;
      return Math.exp(-0.5 * Math.pow((2 * peak) / binWidthBins[j], 2));
    }),
  );
  const colNorm = weights[0].map((_, j) => Math.sqrt(weights.reduce((acc, row) => acc + row[j] ** 2, 0)));
  weights = weights.map((row) => row.map((v, j) => v / (colNorm[j] || 1)));
  const octaveWeights = frequencyBins.map((v) => Math.exp(-0.5 * Math.pow((v / numFilters - 5) / 2, 2)));
  weights = weights.map((row) => row.map((cell, j) => cell * octaveWeights[j]));
  weights = [...weights.slice(3), ...weights.slice(0, 3)];
  return weights.map((row) => Float64Array.from(row.slice(0, numOutputBins)));
}

/** Band limits over the amplitude spectrum for Meyda's loudness (Bark scale). */
function barkLimits(sampleRate: number, bufferSize: number, ampLength: number): Int32Array {
  const bark = new Float32Array(bufferSize);
  for (let i = 0; i < bark.length; i++) {
    bark[i] = (i * sampleRate) / bufferSize;
    bark[i] = 13 * Math.atan(bark[i] / 1315.8) + 3.5 * Math.atan(Math.pow(bark[i] / 7518, 2));
  }
  const limits = new Int32Array(BARK_BANDS + 1);
  let bandEnd = bark[ampLength - 1] / BARK_BANDS;
  let band = 1;
  for (let i = 0; i < ampLength; i++) {
    while (bark[i] > bandEnd) {
      limits[band++] = i;
      bandEnd = (band * bark[ampLength - 1]) / BARK_BANDS;
    }
  }
  limits[BARK_BANDS] = ampLength - 1;
  return limits;
}

// ---------------------------------------------------------------------------------------------

/**
 * Extracts the F per-frame features of one N-sample frame. Reuses its buffers: create one per
 * thread. Values are Meyda's (NaN where Meyda gives NaN, e.g. spectral moments of silence).
 */
export class FrameExtractor {
  readonly size: number;
  readonly dim: number;
  private readonly cfg: FeaturizeConfig;
  private readonly nMel: number;
  private readonly window: Float32Array;
  /** Bit reversal for the N/2-point complex FFT. */
  private readonly rev: Uint32Array;
  /** Twiddles per stage, concatenated: stage s (len 2^s) holds cos/sin(-2πk/2^s), k < 2^(s-1). */
  private readonly twRe: Float64Array;
  private readonly twIm: Float64Array;
  /** e^{-2πik/N}, k < N/2: splits the packed half-size FFT into the real signal's spectrum. */
  private readonly splitRe: Float64Array;
  private readonly splitIm: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  private readonly amp: Float32Array;
  private readonly pow: Float32Array;
  /** Bin frequencies (Hz) and their sums, constant per frame (spectral slope). */
  private readonly freqs: Float64Array;
  private readonly freqSum: number;
  private readonly powFreqSum: number;
  private readonly mel: { start: number; weights: Float64Array }[];
  private readonly melOut: Float32Array;
  /** DCT-II basis, band-major: `dct[m · n_mfcc + k]`. */
  private readonly dct: Float64Array;
  private readonly mfccOut: Float64Array;
  /**
   * Chroma filter rows without their negligible weights: `runs` holds [start, end) bin ranges,
   * `weights` their weights back to back.
   */
  private readonly chroma: { runs: Int32Array; weights: Float64Array }[];
  private readonly chromaOut: Float64Array;
  private readonly bark: Int32Array;
  private readonly barkOut: Float32Array;

  constructor(cfg: FeaturizeConfig) {
    const n = cfg.frame_size;
    if (!isPowerOfTwo(n) || n < 16) {
      throw new RangeError(`featurize.frame_size: not a power of two >= 16 "${n}"`);
    }
    this.cfg = cfg;
    this.size = n;
    this.nMel = melFilterCount(cfg);
    this.dim = frameFeatureNames(cfg).length;
    this.window = hanning(n);
    // A real N-point FFT as one N/2-point complex FFT of (even + i·odd) samples plus a split step.
    const m = n / 2;
    const bits = Math.log2(m);
    this.rev = new Uint32Array(m);
    for (let i = 0; i < m; i++) {
      let r = 0;
      for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
      this.rev[i] = r;
    }
    this.twRe = new Float64Array(m);
    this.twIm = new Float64Array(m);
    for (let s = 1, off = 0; s <= bits; s++) {
      const len = 2 ** s;
      for (let k = 0; k < len / 2; k++) {
        const x = (-2 * Math.PI * k) / len;
        this.twRe[off + k] = Math.cos(x);
        this.twIm[off + k] = Math.sin(x);
      }
      off += len / 2;
    }
    this.splitRe = new Float64Array(m);
    this.splitIm = new Float64Array(m);
    for (let k = 0; k < m; k++) {
      this.splitRe[k] = Math.cos((-2 * Math.PI * k) / n);
      this.splitIm[k] = Math.sin((-2 * Math.PI * k) / n);
    }
    this.re = new Float64Array(m);
    this.im = new Float64Array(m);
    this.amp = new Float32Array(m);
    this.pow = new Float32Array(m);
    this.freqs = new Float64Array(m);
    let freqSum = 0;
    let powFreqSum = 0;
    for (let k = 0; k < m; k++) {
      const f = (k * cfg.sample_rate) / n;
      this.freqs[k] = f;
      freqSum += f;
      powFreqSum += f * f;
    }
    this.freqSum = freqSum;
    this.powFreqSum = powFreqSum;
    this.mel = melFilterBank(this.nMel, cfg.sample_rate, n);
    this.melOut = new Float32Array(this.nMel);
    this.dct = new Float64Array(cfg.n_mfcc * this.nMel);
    for (let k = 0; k < cfg.n_mfcc; k++) {
      for (let m = 0; m < this.nMel; m++)
        this.dct[m * cfg.n_mfcc + k] = Math.cos((Math.PI / this.nMel) * (m + 0.5) * k);
    }
    this.mfccOut = new Float64Array(cfg.n_mfcc);
    // Each bin's chroma weights are a Gaussian per pitch class and fall far below double
    // precision away from its peaks: a weight under 1e-15 of the largest weight of its bin changes
    // no band by more than 12e-15 of the frame's top band (chroma is normalised by that maximum),
    // so skipping those leaves the result unchanged at double precision and skips ~60% of the work.
    const chromaRows = chromaFilterBank(CHROMA_BANDS, cfg.sample_rate, n);
    const binMax = new Float64Array(m);
    for (const row of chromaRows) for (let j = 0; j < m; j++) binMax[j] = Math.max(binMax[j], row[j]);
    this.chroma = chromaRows.map((row) => {
      const runs: number[] = [];
      const weights: number[] = [];
      for (let j = 0; j < m; j++) {
        if (!(row[j] !== 0 && row[j] >= 1e-15 * binMax[j])) continue;
        if (runs.length > 0 && runs[runs.length - 1] === j) runs[runs.length - 1] = j + 1;
        else runs.push(j, j + 1);
        weights.push(row[j]);
      }
      return { runs: Int32Array.from(runs), weights: Float64Array.from(weights) };
    });
    this.chromaOut = new Float64Array(CHROMA_BANDS);
    this.bark = barkLimits(cfg.sample_rate, n, n / 2);
    this.barkOut = new Float32Array(BARK_BANDS);
  }

  /** Writes the F features of `frame[offset .. offset+N)` into `out[outOffset ..]`. */
  extract(frame: Float32Array, offset: number, out: Float32Array | Float64Array, outOffset: number): void {
    const n = this.size;
    const half = n / 2;
    const { re, im, window, rev, amp } = this;

    // Window (Meyda multiplies float32 samples by the float32 window in double), packed as
    // even + i·odd in bit-reversed order; RMS and ZCR are taken on the windowed frame as in Meyda.
    const m = half;
    let sumSq = 0;
    let zcr = 0;
    let prevNeg = frame[offset] * window[0] < 0;
    for (let j = 0; j < m; j++) {
      const i = 2 * j;
      const v0 = frame[offset + i] * window[i];
      const v1 = frame[offset + i + 1] * window[i + 1];
      sumSq += v0 * v0;
      sumSq += v1 * v1;
      const neg0 = v0 < 0;
      const neg1 = v1 < 0;
      zcr += (neg0 !== prevNeg ? 1 : 0) + (neg1 !== neg0 ? 1 : 0);
      prevNeg = neg1;
      re[rev[j]] = v0;
      im[rev[j]] = v1;
    }

    // Radix-2 decimation-in-time complex FFT of size N/2. The first two stages (butterfly
    // lengths 2 and 4) have twiddles 1 and -i only, so they run fused without multiplications.
    for (let e = 0; e < m; e += 4) {
      const aRe = re[e] + re[e + 1];
      const aIm = im[e] + im[e + 1];
      const bRe = re[e] - re[e + 1];
      const bIm = im[e] - im[e + 1];
      const cRe = re[e + 2] + re[e + 3];
      const cIm = im[e + 2] + im[e + 3];
      const dRe = re[e + 2] - re[e + 3];
      const dIm = im[e + 2] - im[e + 3];
      re[e] = aRe + cRe;
      im[e] = aIm + cIm;
      re[e + 2] = aRe - cRe;
      im[e + 2] = aIm - cIm;
      // (-i)·d = dIm - i·dRe
      re[e + 1] = bRe + dIm;
      im[e + 1] = bIm - dRe;
      re[e + 3] = bRe - dIm;
      im[e + 3] = bIm + dRe;
    }
    for (let len = 8, off = 3; len <= m; len *= 2) {
      const h = len / 2;
      for (let k = 0; k < h; k++) {
        const wr = this.twRe[off + k];
        const wi = this.twIm[off + k];
        for (let e = k; e < m; e += len) {
          const o = e + h;
          const oRe = wr * re[o] - wi * im[o];
          const oIm = wr * im[o] + wi * re[o];
          const eRe = re[e];
          const eIm = im[e];
          re[o] = eRe - oRe;
          im[o] = eIm - oIm;
          re[e] = oRe + eRe;
          im[e] = oIm + eIm;
        }
      }
      off += h;
    }

    // Split into X[k] = E[k] + e^{-2πik/N}·O[k], then the amplitude spectrum (float32, N/2 bins,
    // as Meyda) and the moments every spectral feature needs.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let ampSq = 0;
    let peak = -Infinity;
    let ampFreqSum = 0;
    const { splitRe, splitIm, freqs } = this;
    for (let k = 0; k < m; k++) {
      const c = k === 0 ? 0 : m - k;
      const ar = re[k];
      const ai = im[k];
      const br = re[c];
      const bi = -im[c];
      const er = 0.5 * (ar + br);
      const ei = 0.5 * (ai + bi);
      const or = 0.5 * (ai - bi);
      const oi = -0.5 * (ar - br);
      const wr = splitRe[k];
      const wi = splitIm[k];
      const xr = er + wr * or - wi * oi;
      const xi = ei + wr * oi + wi * or;
      amp[k] = Math.sqrt(xr * xr + xi * xi);
      const a = amp[k];
      const k2 = k * k;
      s0 += a;
      s1 += k * a;
      s2 += k2 * a;
      s3 += k2 * k * a;
      s4 += k2 * k2 * a;
      ampSq += a * a;
      if (a > peak) peak = a;
      ampFreqSum += freqs[k] * a;
      this.pow[k] = a * a;
    }
    // Σ log|X| for flatness: one log per 32 bins (a product of 32 amplitudes stays clear of
    // under/overflow for audio; chunks that do not fall back to one log per bin, so zeros still
    // give -Infinity).
    let logSum = 0;
    for (let k0 = 0; k0 < m; k0 += 32) {
      const end = Math.min(m, k0 + 32);
      let p = 1;
      for (let k = k0; k < end; k++) p *= amp[k];
      if (p > 1e-280 && p < 1e280) logSum += Math.log(p);
      else for (let k = k0; k < end; k++) logSum += Math.log(amp[k]);
    }
    const freqSum = this.freqSum;
    const powFreqSum = this.powFreqSum;
    const sr = this.cfg.sample_rate;
    const mu1 = s1 / s0;
    const mu2 = s2 / s0;
    const mu3 = s3 / s0;
    const mu4 = s4 / s0;
    const variance = mu2 - Math.pow(mu1, 2);
    const sd = Math.sqrt(variance);

    // Rolloff: Meyda walks down from the top bin removing energy until below 99%.
    let ec = s0;
    const threshold = 0.99 * ec;
    let top = half - 1;
    while (ec > threshold && top >= 0) {
      ec -= amp[top];
      --top;
    }
    const nyqBin = sr / (2 * (half - 1));

    let o = outOffset;
    // MFCC from float32 log mel bands (Meyda accumulates the bands in a Float32Array).
    // Each band is a chain of float32 additions in bin order, which must stay in that order to
    // round as Meyda does; two bands run side by side so their chains overlap in the CPU.
    const melOut = this.melOut;
    const { pow, mel } = this;
    const nMel = this.nMel;
    for (let m = 0; m < nMel; m += 2) {
      const a = mel[m];
      const b = m + 1 < nMel ? mel[m + 1] : undefined;
      const wa = a.weights;
      const wb = b ? b.weights : wa;
      const sa = a.start;
      const sb = b ? b.start : 0;
      const both = b ? Math.min(wa.length, wb.length) : 0;
      let accA = 0;
      let accB = 0;
      let j = 0;
      for (; j < both; j++) {
        accA = Math.fround(accA + Math.fround(wa[j] * pow[sa + j]));
        accB = Math.fround(accB + Math.fround(wb[j] * pow[sb + j]));
      }
      for (let i = j; i < wa.length; i++) accA = Math.fround(accA + Math.fround(wa[i] * pow[sa + i]));
      melOut[m] = Math.log(accA + 1);
      if (b) {
        for (let i = j; i < wb.length; i++) accB = Math.fround(accB + Math.fround(wb[i] * pow[sb + i]));
        melOut[m + 1] = Math.log(accB + 1);
      }
    }
    // DCT with the band loop outside: every coefficient still sums its terms in band order (the
    // same result), but the coefficients' additions are independent of each other.
    const nMfcc = this.cfg.n_mfcc;
    const mfcc = this.mfccOut;
    mfcc.fill(0);
    for (let m = 0; m < nMel; m++) {
      const v = melOut[m];
      const base = m * nMfcc;
      for (let k = 0; k < nMfcc; k++) mfcc[k] += v * this.dct[base + k];
    }
    for (let k = 0; k < nMfcc; k++) out[o++] = 2 * mfcc[k];
    for (let m = 0; m < nMel; m++) out[o++] = melOut[m];

    // Chroma: dense filter bank over the amplitude spectrum, normalised by the maximum.
    let maxChroma = -Infinity;
    for (let c = 0; c < CHROMA_BANDS; c++) {
      const { runs, weights } = this.chroma[c];
      // Two partial sums per band (reassociation moves the result by ~1e-16 of the band).
      let acc0 = 0;
      let acc1 = 0;
      for (let r = 0, w = 0; r < runs.length; r += 2) {
        const end = runs[r + 1];
        let j = runs[r];
        for (; j + 1 < end; j += 2, w += 2) {
          acc0 += amp[j] * weights[w];
          acc1 += amp[j + 1] * weights[w + 1];
        }
        if (j < end) acc0 += amp[j] * weights[w++];
      }
      const acc = acc0 + acc1;
      this.chromaOut[c] = acc;
      if (acc > maxChroma) maxChroma = acc;
    }
    for (let c = 0; c < CHROMA_BANDS; c++)
      out[o++] = maxChroma ? this.chromaOut[c] / maxChroma : this.chromaOut[c];

    // Loudness (total of specific loudness over Bark bands).
    let loudness = 0;
    for (let b = 0; b < BARK_BANDS; b++) {
      let sum = 0;
      for (let j = this.bark[b]; j < this.bark[b + 1]; j++) sum += amp[j];
      // sum^0.23 as exp(0.23·ln sum): the same value to within an ulp, about twice as fast as
      // Math.pow here, and sum = 0 still gives 0.
      this.barkOut[b] = Math.exp(0.23 * Math.log(sum));
    }
    for (let b = 0; b < BARK_BANDS; b++) loudness += this.barkOut[b];

    const crestRms = Math.sqrt(ampSq / half);
    out[o++] = Math.sqrt(sumSq / n); // rms
    out[o++] = zcr;
    out[o++] = mu1; // spectralCentroid (in bins, as Meyda)
    out[o++] = (top + 1) * nyqBin; // spectralRolloff (Hz)
    out[o++] = (Math.exp(logSum / half) * half) / s0; // spectralFlatness
    out[o++] = sd; // spectralSpread
    out[o++] = (2 * Math.pow(mu1, 3) - 3 * mu1 * mu2 + mu3) / Math.pow(sd, 3); // spectralSkewness
    out[o++] = (-3 * Math.pow(mu1, 4) + 6 * mu1 * mu2 - 4 * mu1 * mu3 + mu4) / Math.pow(sd, 4); // spectralKurtosis
    out[o++] = (half * ampFreqSum - freqSum * s0) / (s0 * (powFreqSum - Math.pow(freqSum, 2))); // spectralSlope
    out[o++] = peak / crestRms; // spectralCrest
    out[o] = loudness;
  }
}

/** Per-clip features: raw (unnormalised) T×F frames and D summary. */
export interface ClipFeatures {
  /** T×F float32, frames past the clip's end are zero rows. */
  frames: Float32Array;
  /** D float32 summary vector (mean, std, mfcc Δ-mean). */
  summary: Float32Array;
  /** Frames that carry audio (the rest of the T are zero padding). */
  nFrames: number;
}

/** Downmix, replace non-finite samples by 0, resample to `cfg.sample_rate`, truncate to max_seconds. */
export function prepareAudio(cfg: FeaturizeConfig, audio: DecodedAudio): Float32Array {
  const mono = audio.channels.length === 0 ? new Float32Array(0) : downmix(audio.channels);
  // downmix may return the caller's channel: copy before cleaning so the input is never mutated.
  const clean = mono === audio.channels[0] ? mono.slice() : mono;
  for (let i = 0; i < clean.length; i++) if (!Number.isFinite(clean[i])) clean[i] = 0;
  const limit = maxSamples(cfg);
  if (audio.sampleRate === cfg.sample_rate) return clean.length > limit ? clean.slice(0, limit) : clean;
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
