/**
 * The tables the frame extractor precomputes once per config, built exactly as Meyda 5.6 builds
 * them (including its float32 intermediates): Hann window, mel filters as sparse bin ranges,
 * chroma filters without their negligible weights, Bark band limits, and a table-driven x^0.23.
 */
import { BARK_BANDS } from './names.ts';

/** One mel filter: its weights over bins `start .. start + weights.length`. */
export interface MelFilter {
  start: number;
  weights: Float64Array;
}

/** One chroma filter: `runs` holds [start, end) bin ranges, `weights` their weights back to back. */
export interface SparseRow {
  runs: Int32Array;
  weights: Float64Array;
}

export function hanning(size: number): Float32Array {
  const w = new Float32Array(size);
  for (let i = 0; i < size; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (size - 1));
  return w;
}

const freqToMel = (f: number): number => 1125 * Math.log(1 + f / 700);
const melToFreq = (m: number): number => 700 * (Math.exp(m / 1125) - 1);

/** Sparse mel filters: for each filter, the first bin and its weights (Meyda's createMelFilterBank). */
export function melFilterBank(numFilters: number, sampleRate: number, bufferSize: number): MelFilter[] {
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
  const filters: MelFilter[] = [];
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
export function chromaFilterBank(numFilters: number, sampleRate: number, bufferSize: number): Float64Array[] {
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
export function barkLimits(sampleRate: number, bufferSize: number, ampLength: number): Int32Array {
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

/**
 * Chroma filter rows of `bins` bins without their negligible weights. Each bin's chroma weights
 * are a Gaussian per pitch class and fall far below double precision away from its peaks: a
 * weight under 1e-15 of the largest weight of its bin changes no band by more than 12e-15 of the
 * frame's top band (chroma is normalised by that maximum), so skipping those leaves the result
 * unchanged at double precision and skips ~60% of the work.
 */
export function sparseChroma(rows: Float64Array[], bins: number): SparseRow[] {
  const binMax = new Float64Array(bins);
  for (const row of rows) for (let j = 0; j < bins; j++) binMax[j] = Math.max(binMax[j], row[j]);
  return rows.map((row) => {
    const runs: number[] = [];
    const weights: number[] = [];
    for (let j = 0; j < bins; j++) {
      if (!(row[j] !== 0 && row[j] >= 1e-15 * binMax[j])) continue;
      if (runs.length > 0 && runs[runs.length - 1] === j) runs[runs.length - 1] = j + 1;
      else runs.push(j, j + 1);
      weights.push(row[j]);
    }
    return { runs: Int32Array.from(runs), weights: Float64Array.from(weights) };
  });
}

// x^0.23 (Meyda's specific loudness) from the bits of x: x = 2^e · f with f in [1, 2) split as
// f = f0 · (1 + r), f0 the midpoint of one of 256 mantissa cells and |r| < 2^-9, so
// x^0.23 = (2^0.23)^e · f0^0.23 · (1 + r)^0.23, the last by four Taylor terms (truncation error
// under 1e-12 relative). Meyda stores the result as float32 (6e-8 relative), so the values agree
// with Math.pow to well within that; about four times faster than exp(0.23·log x).
const POW = 0.23;
const CELLS = 256;
const cellInv = new Float64Array(CELLS);
const cellPow = new Float64Array(CELLS);
for (let i = 0; i < CELLS; i++) {
  const f0 = 1 + (i + 0.5) / CELLS;
  cellInv[i] = 1 / f0;
  cellPow[i] = Math.pow(f0, POW);
}
/** (2^0.23)^e for the exponents of normal doubles, e = -1022 .. 1023 at index e + 1022. */
const expPow = new Float64Array(2046);
for (let e = -1022; e <= 1023; e++) expPow[e + 1022] = Math.pow(2, POW * e);
const C1 = POW;
const C2 = (C1 * (POW - 1)) / 2;
const C3 = (C2 * (POW - 2)) / 3;
const C4 = (C3 * (POW - 3)) / 4;
const bits = new Float64Array(1);
const words = new Uint32Array(bits.buffer);
// Uint32 word order of a double on this machine (little-endian everywhere Node runs, checked).
const HI = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f ? 1 : 0;

/** x^0.23 for x >= 0 (0 for 0; Math.pow for subnormal, infinite and NaN x). */
export function pow023(x: number): number {
  bits[0] = x;
  const hi = words[HI];
  const biased = hi >>> 20;
  // Sign bit set, zero/subnormal (biased 0) or Inf/NaN (2047): the exact function.
  if (biased === 0 || biased >= 2047) return x === 0 ? 0 : Math.pow(x, POW);
  const cell = (hi >>> 12) & (CELLS - 1);
  words[HI] = (hi & 0x000fffff) | 0x3ff00000;
  const r = bits[0] * cellInv[cell] - 1;
  return expPow[biased - 1] * cellPow[cell] * (1 + r * (C1 + r * (C2 + r * (C3 + r * C4))));
}
