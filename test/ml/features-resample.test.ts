import { describe, expect, it } from 'vitest';
import { resample } from '../../lib/audio/resample.ts';

function sine(freq: number, rate: number, seconds: number, amp = 0.5): Float32Array {
  const n = Math.round(rate * seconds);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * freq * i) / rate);
  return x;
}

/** Largest |y - reference sine| over the interior (filter edges excluded). */
function maxError(y: Float32Array, freq: number, rate: number, amp = 0.5): number {
  let max = 0;
  const margin = Math.round(rate * 0.01);
  for (let i = margin; i < y.length - margin; i++) {
    max = Math.max(max, Math.abs(y[i] - amp * Math.sin((2 * Math.PI * freq * i) / rate)));
  }
  return max;
}

function rms(y: Float32Array, margin: number): number {
  let s = 0;
  for (let i = margin; i < y.length - margin; i++) s += y[i] * y[i];
  return Math.sqrt(s / (y.length - 2 * margin));
}

describe('resample', () => {
  it.each([
    [44100, 16000, 1000],
    [48000, 16000, 3000],
    [22050, 16000, 440],
    [8000, 16000, 1000],
    [16000, 22050, 2500],
    [11025, 16000, 200],
  ])('resample %i Hz -> %i Hz keeps a %i Hz sine (max error < 1e-3)', (from, to, freq) => {
    const y = resample(sine(freq, from, 0.5), from, to);
    expect(y.length).toBe(Math.ceil((Math.round(from * 0.5) * to) / from));
    expect(maxError(y, freq, to)).toBeLessThan(1e-3);
  });

  it.each([
    [44100, 16000, 10000],
    [48000, 16000, 12000],
    [22050, 8000, 6000],
  ])('resample %i Hz -> %i Hz removes a %i Hz tone above the new Nyquist (> 60 dB)', (from, to, freq) => {
    const y = resample(sine(freq, from, 0.5), from, to);
    const attenuation = rms(y, Math.round(to * 0.01)) / (0.5 / Math.SQRT2);
    expect(20 * Math.log10(attenuation)).toBeLessThan(-60);
  });

  it('resample handles ratios too odd to tabulate (44100 -> 16001)', () => {
    const y = resample(sine(700, 44100, 0.2), 44100, 16001);
    expect(maxError(y, 700, 16001)).toBeLessThan(1e-3);
  });

  it('resample is deterministic and returns a copy at the same rate', () => {
    const x = sine(1234, 44100, 0.1);
    const a = resample(x, 44100, 16000);
    expect(resample(x, 44100, 16000)).toEqual(a);
    const same = resample(x, 16000, 16000);
    expect(same).toEqual(x);
    expect(same).not.toBe(x);
  });

  it('resample stops at maxLength and rejects non-integer rates', () => {
    const x = sine(300, 44100, 0.5);
    const full = resample(x, 44100, 16000);
    const cut = resample(x, 44100, 16000, { maxLength: 1000 });
    expect(cut).toEqual(full.subarray(0, 1000));
    expect(() => resample(x, 44100.5, 16000)).toThrow(RangeError);
    expect(resample(new Float32Array(0), 44100, 16000)).toHaveLength(0);
  });
});
