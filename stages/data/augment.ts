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

/** Blackman-windowed sinc, zero beyond `TAPS` zero crossings. */
function kernel(u: number): number {
  const a = Math.abs(u);
  if (a >= TAPS) return 0;
  const sinc = a === 0 ? 1 : Math.sin(Math.PI * a) / (Math.PI * a);
  return sinc * (0.42 + 0.5 * Math.cos((Math.PI * a) / TAPS) + 0.08 * Math.cos((2 * Math.PI * a) / TAPS));
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Band-limited resampling (Blackman-windowed sinc, 16 zero crossings each side). Rational
 * ratios (every pair of integer rates) use a polyphase table: one weight row per output phase,
 * computed once, so each output sample is a short dot product.
 * Returns the input unchanged when the rates match.
 */
export function resample(x: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return x;
  const cutoff = Math.min(1, to / from);
  const g = gcd(from, to);
  const up = to / g; // output phases
  const down = from / g; // input samples advanced per `up` outputs
  const reach = Math.ceil(TAPS / cutoff);
  const width = 2 * reach + 1;
  // weights[p * width + (k + reach)]: input at base + k for an output at phase p / up.
  const weights = new Float64Array(up * width);
  for (let p = 0; p < up; p++) {
    for (let k = -reach; k <= reach; k++)
      weights[p * width + k + reach] = cutoff * kernel((p / up - k) * cutoff);
  }
  const n = Math.floor((x.length * to) / from);
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const pos = j * down;
    const base = Math.floor(pos / up);
    const row = (pos - base * up) * width;
    const lo = Math.max(-reach, -base);
    const hi = Math.min(reach, x.length - 1 - base);
    let acc = 0;
    for (let k = lo; k <= hi; k++) acc += x[base + k] * weights[row + k + reach];
    out[j] = acc;
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
