/**
 * Meyda-equivalent features of one frame. Every feature follows Meyda 5.6's exact definitions
 * (Hann window of length N with denominator N-1, amplitude spectrum of N/2 bins held as float32,
 * power spectrum = amplitude², mel bands accumulated in float32 then log(x+1), MFCC =
 * unnormalised DCT-II ×2, chroma normalised by its maximum, rolloff at 0.99, RMS and ZCR on the
 * windowed frame); all of them come from one amplitude spectrum and one pass over it for the
 * spectral moments. `lib/ml/meyda-reference.ts` runs Meyda itself for tests and the benchmark.
 */
import { BARK_BANDS, CHROMA_BANDS, frameFeatureNames, isPowerOfTwo, melFilterCount } from './names.ts';
import type { FeaturizeConfig } from './names.ts';
import { RealFft } from './real-fft.ts';
import type { MelFilter, SparseRow } from './tables.ts';
import { barkLimits, chromaFilterBank, hanning, melFilterBank, pow023, sparseChroma } from './tables.ts';

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
  private readonly fft: RealFft;
  private readonly amp: Float32Array;
  private readonly pow: Float32Array;
  /** Σ of the bin frequencies (Hz) and of their squares, constant per frame (spectral slope). */
  private readonly freqSum: number;
  private readonly powFreqSum: number;
  private readonly mel: MelFilter[];
  private readonly melOut: Float32Array;
  /** DCT-II basis, coefficient-major: `dct[k · nMel + m]`. */
  private readonly dct: Float64Array;
  private readonly chroma: SparseRow[];
  private readonly chromaOut: Float64Array;
  private readonly bark: Int32Array;

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
    this.fft = new RealFft(n);
    const half = n / 2;
    this.amp = new Float32Array(half);
    this.pow = new Float32Array(half);
    let freqSum = 0;
    let powFreqSum = 0;
    for (let k = 0; k < half; k++) {
      const f = (k * cfg.sample_rate) / n;
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
        this.dct[k * this.nMel + m] = Math.cos((Math.PI / this.nMel) * (m + 0.5) * k);
    }
    this.chroma = sparseChroma(chromaFilterBank(CHROMA_BANDS, cfg.sample_rate, n), half);
    this.chromaOut = new Float64Array(CHROMA_BANDS);
    this.bark = barkLimits(cfg.sample_rate, n, half);
  }

  /** Writes the F features of `frame[offset .. offset+N)` into `out[outOffset ..]`. */
  extract(frame: Float32Array, offset: number, out: Float32Array | Float64Array, outOffset: number): void {
    const n = this.size;
    const half = n / 2;
    const { window, amp, pow } = this;
    const { re, im, rev } = this.fft;

    // Window (Meyda multiplies float32 samples by the float32 window in double), packed as
    // even + i·odd in bit-reversed order; RMS and ZCR are taken on the windowed frame as in Meyda.
    // Signs are counted as 0/1 integers so the crossing count needs no branch.
    let sumSq = 0;
    let zcr = 0;
    let prevNeg = frame[offset] * window[0] < 0 ? 1 : 0;
    for (let j = 0; j < half; j++) {
      const i = 2 * j;
      const v0 = frame[offset + i] * window[i];
      const v1 = frame[offset + i + 1] * window[i + 1];
      sumSq += v0 * v0 + v1 * v1;
      const neg0 = v0 < 0 ? 1 : 0;
      const neg1 = v1 < 0 ? 1 : 0;
      zcr += (neg0 ^ prevNeg) + (neg1 ^ neg0);
      prevNeg = neg1;
      const r = rev[j];
      re[r] = v0;
      im[r] = v1;
    }
    this.fft.transform();
    this.fft.amplitudes(amp);

    // Every spectral feature from one pass over the amplitude spectrum: its moments about bin 0,
    // energy, peak, and the power spectrum (float32, as Meyda) for the mel bands.
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let ampSq = 0;
    let peak = -Infinity;
    for (let k = 0; k < half; k++) {
      const a = amp[k];
      const k2 = k * k;
      const ka = k * a;
      const k2a = k2 * a;
      s0 += a;
      s1 += ka;
      s2 += k2a;
      s3 += k2a * k;
      s4 += k2a * k2;
      const p = a * a;
      ampSq += p;
      if (a > peak) peak = a;
      pow[k] = p;
    }
    // Σ log|X| for flatness: one log per 32 bins (a product of 32 amplitudes stays clear of
    // under/overflow for audio; chunks that do not fall back to one log per bin, so zeros still
    // give -Infinity).
    let logSum = 0;
    for (let k0 = 0; k0 < half; k0 += 32) {
      const end = Math.min(half, k0 + 32);
      let p = 1;
      for (let k = k0; k < end; k++) p *= amp[k];
      if (p > 1e-280 && p < 1e280) logSum += Math.log(p);
      else for (let k = k0; k < end; k++) logSum += Math.log(amp[k]);
    }
    const sr = this.cfg.sample_rate;
    // Σ f_k·|X_k| with f_k = k·sr/N.
    const ampFreqSum = (s1 * sr) / n;
    const mu1 = s1 / s0;
    const mu2 = s2 / s0;
    const mu3 = s3 / s0;
    const mu4 = s4 / s0;
    const sd = Math.sqrt(mu2 - mu1 * mu1);

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
    this.melBands();
    const nMfcc = this.cfg.n_mfcc;
    const { melOut, dct, nMel } = this;
    // DCT: every coefficient sums its terms in band order, in two halves (independent additions).
    for (let k = 0; k < nMfcc; k++) {
      const base = k * nMel;
      let acc0 = 0;
      let acc1 = 0;
      let m = 0;
      for (; m + 1 < nMel; m += 2) {
        acc0 += melOut[m] * dct[base + m];
        acc1 += melOut[m + 1] * dct[base + m + 1];
      }
      if (m < nMel) acc0 += melOut[m] * dct[base + m];
      out[o++] = 2 * (acc0 + acc1);
    }
    for (let m = 0; m < nMel; m++) out[o++] = melOut[m];

    // Chroma: the sparse filter bank over the amplitude spectrum, normalised by the maximum.
    let maxChroma = -Infinity;
    const chromaOut = this.chromaOut;
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
      chromaOut[c] = acc;
      if (acc > maxChroma) maxChroma = acc;
    }
    for (let c = 0; c < CHROMA_BANDS; c++) out[o++] = maxChroma ? chromaOut[c] / maxChroma : chromaOut[c];

    // Loudness: total of the specific loudness (band sum^0.23, float32 as Meyda) over Bark bands.
    let loudness = 0;
    const bark = this.bark;
    for (let b = 0; b < BARK_BANDS; b++) {
      let sum = 0;
      for (let j = bark[b]; j < bark[b + 1]; j++) sum += amp[j];
      loudness += Math.fround(pow023(sum));
    }

    const mu1sq = mu1 * mu1;
    const sd2 = sd * sd;
    const crestRms = Math.sqrt(ampSq / half);
    const freqSum = this.freqSum;
    out[o++] = Math.sqrt(sumSq / n); // rms
    out[o++] = zcr;
    out[o++] = mu1; // spectralCentroid (in bins, as Meyda)
    out[o++] = (top + 1) * nyqBin; // spectralRolloff (Hz)
    out[o++] = (Math.exp(logSum / half) * half) / s0; // spectralFlatness
    out[o++] = sd; // spectralSpread
    out[o++] = (2 * mu1sq * mu1 - 3 * mu1 * mu2 + mu3) / (sd2 * sd); // spectralSkewness
    out[o++] = (-3 * mu1sq * mu1sq + 6 * mu1 * mu2 - 4 * mu1 * mu3 + mu4) / (sd2 * sd2); // spectralKurtosis
    out[o++] = (half * ampFreqSum - freqSum * s0) / (s0 * (this.powFreqSum - freqSum * freqSum)); // spectralSlope
    out[o++] = peak / crestRms; // spectralCrest
    out[o] = loudness;
  }

  /**
   * log(x+1) of each mel band into `melOut`. Each band is a chain of float32 additions in bin
   * order (Meyda accumulates in a Float32Array), which must stay in that order to round as Meyda
   * does; four bands run side by side so their chains overlap in the CPU.
   */
  private melBands(): void {
    const { pow, mel, melOut, nMel } = this;
    let m = 0;
    for (; m + 3 < nMel; m += 4) {
      const f0 = mel[m];
      const f1 = mel[m + 1];
      const f2 = mel[m + 2];
      const f3 = mel[m + 3];
      const w0 = f0.weights;
      const w1 = f1.weights;
      const w2 = f2.weights;
      const w3 = f3.weights;
      const s0 = f0.start;
      const s1 = f1.start;
      const s2 = f2.start;
      const s3 = f3.start;
      const both = Math.min(w0.length, w1.length, w2.length, w3.length);
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      let j = 0;
      for (; j < both; j++) {
        a0 = Math.fround(a0 + Math.fround(w0[j] * pow[s0 + j]));
        a1 = Math.fround(a1 + Math.fround(w1[j] * pow[s1 + j]));
        a2 = Math.fround(a2 + Math.fround(w2[j] * pow[s2 + j]));
        a3 = Math.fround(a3 + Math.fround(w3[j] * pow[s3 + j]));
      }
      melOut[m] = Math.log(melTail(a0, w0, pow, s0, j) + 1);
      melOut[m + 1] = Math.log(melTail(a1, w1, pow, s1, j) + 1);
      melOut[m + 2] = Math.log(melTail(a2, w2, pow, s2, j) + 1);
      melOut[m + 3] = Math.log(melTail(a3, w3, pow, s3, j) + 1);
    }
    for (; m < nMel; m++) {
      const f = mel[m];
      melOut[m] = Math.log(melTail(0, f.weights, pow, f.start, 0) + 1);
    }
  }
}

/** Continues a mel band's float32 chain `acc` from weight `from` to its end. */
function melTail(acc: number, w: Float64Array, pow: Float32Array, start: number, from: number): number {
  for (let i = from; i < w.length; i++) acc = Math.fround(acc + Math.fround(w[i] * pow[start + i]));
  return acc;
}
