/**
 * Turns one raw eSpeak NG rendering into a corpus file: emotion colouring (low-pass for a dull
 * voice, soft saturation for a pressed voice, tremolo for a shaky one), resampling to the corpus
 * rate, then the seeded gain and noise augmentation. Pure functions of their inputs.
 */
import { createRng } from './rng.ts';

export interface Colour {
  dull: number;
  drive: number;
  tremolo: number;
  tremoloHz: number;
}

/** Applies the emotion colouring in place at `rate` Hz. */
export function colourVoice(x: Float32Array, rate: number, c: Colour): Float32Array {
  if (c.dull > 0) {
    // One-pole low-pass blended with the dry signal: removes brightness without muffling fully.
    const a = Math.exp((-2 * Math.PI * 1800) / rate);
    let y = 0;
    for (let i = 0; i < x.length; i++) {
      y = (1 - a) * x[i] + a * y;
      x[i] = (1 - c.dull) * x[i] + c.dull * y;
    }
  }
  if (c.drive > 0) {
    const k = 1 + c.drive;
    const g = 1 + 0.5 * c.drive;
    for (let i = 0; i < x.length; i++) x[i] = (Math.tanh(k * x[i]) / k) * g;
  }
  if (c.tremolo > 0) {
    const w = (2 * Math.PI * c.tremoloHz) / rate;
    for (let i = 0; i < x.length; i++) x[i] *= 1 - c.tremolo * 0.5 * (1 + Math.sin(w * i));
  }
  return x;
}

const TAPS = 16;
const STEPS = 256;

/**
 * Band-limited resampling (Blackman-windowed sinc, 16 taps each side, table-driven).
 * Returns the input unchanged when the rates match.
 */
export function resample(x: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return x;
  const cutoff = Math.min(1, to / from);
  const table = new Float64Array(TAPS * STEPS + 2);
  for (let i = 0; i < table.length; i++) {
    const t = i / STEPS;
    const sinc = t === 0 ? 1 : Math.sin(Math.PI * t) / (Math.PI * t);
    const w =
      t >= TAPS ? 0 : 0.42 + 0.5 * Math.cos((Math.PI * t) / TAPS) + 0.08 * Math.cos((2 * Math.PI * t) / TAPS);
    table[i] = sinc * w;
  }
  const kernel = (d: number): number => {
    const p = Math.abs(d) * STEPS;
    const i = Math.floor(p);
    if (i >= TAPS * STEPS) return 0;
    const f = p - i;
    return table[i] * (1 - f) + table[i + 1] * f;
  };
  const n = Math.floor((x.length * to) / from);
  const out = new Float32Array(n);
  const step = from / to;
  const reach = TAPS / cutoff;
  for (let j = 0; j < n; j++) {
    const t = j * step;
    const lo = Math.max(0, Math.ceil(t - reach));
    const hi = Math.min(x.length - 1, Math.floor(t + reach));
    let acc = 0;
    for (let i = lo; i <= hi; i++) acc += x[i] * kernel((t - i) * cutoff);
    out[j] = acc * cutoff;
  }
  return out;
}

/** Gain (dB, limited so the peak stays below -0.3 dBFS) and seeded Gaussian noise of RMS `noise`. */
export function augment(x: Float32Array, gainDb: number, noise: number, seed: number): Float32Array {
  let peak = 0;
  for (let i = 0; i < x.length; i++) peak = Math.max(peak, Math.abs(x[i]));
  let gain = 10 ** (gainDb / 20);
  if (peak * gain > 0.93) gain = 0.93 / peak;
  const rng = createRng(seed, 'noise');
  for (let i = 0; i < x.length; i++) x[i] = x[i] * gain + noise * rng.normal();
  return x;
}
