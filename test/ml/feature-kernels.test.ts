import { describe, expect, it } from 'vitest';
import { RealFft } from '../../lib/ml/features/real-fft.ts';
import { pow023 } from '../../lib/ml/features/tables.ts';

/** |X[k]|, k < N/2, by the definition of the DFT. */
function naiveAmplitudes(x: Float64Array): Float64Array {
  const n = x.length;
  const out = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) {
    let re = 0;
    let im = 0;
    for (let t = 0; t < n; t++) {
      re += x[t] * Math.cos((-2 * Math.PI * k * t) / n);
      im += x[t] * Math.sin((-2 * Math.PI * k * t) / n);
    }
    out[k] = Math.hypot(re, im);
  }
  return out;
}

describe('RealFft', () => {
  // N/2 = 8, 32, 128: an odd number of stages after the fused first two (one runs alone); 16, 64: even.
  it.each([16, 32, 64, 128, 256])('RealFft amplitudes equal the DFT of a real %i-point frame', (n) => {
    const fft = new RealFft(n);
    const x = new Float64Array(n);
    for (let t = 0; t < n; t++) x[t] = Math.sin(t * 0.7) + 0.3 * Math.cos(t * 2.1 + 1) + (t % 5) * 0.01;
    for (let j = 0; j < n / 2; j++) {
      fft.re[fft.rev[j]] = x[2 * j];
      fft.im[fft.rev[j]] = x[2 * j + 1];
    }
    fft.transform();
    const amp = new Float32Array(n / 2);
    fft.amplitudes(amp);
    const ref = naiveAmplitudes(x);
    const scale = Math.max(...ref);
    for (let k = 0; k < n / 2; k++) expect(Math.abs(amp[k] - ref[k]) / scale).toBeLessThan(1e-6);
  });
});

describe('pow023', () => {
  it('pow023 agrees with Math.pow(x, 0.23) to 1e-12 relative from 1e-300 to 1e300', () => {
    let worst = 0;
    for (let e = -300; e <= 300; e += 0.37) {
      const x = 10 ** e * 1.2345;
      worst = Math.max(worst, Math.abs(pow023(x) / Math.pow(x, 0.23) - 1));
    }
    for (let x = 0.5; x < 4; x += 0.001) worst = Math.max(worst, Math.abs(pow023(x) / Math.pow(x, 0.23) - 1));
    expect(worst).toBeLessThan(1e-12);
  });

  it.each([
    [0, 0],
    [5e-324, Math.pow(5e-324, 0.23)],
    [Infinity, Infinity],
  ])('pow023 of the edge value %d is %d', (x, want) => {
    expect(pow023(x)).toBe(want);
  });

  it('pow023 of NaN and negative values is NaN, as Math.pow', () => {
    expect(pow023(NaN)).toBeNaN();
    expect(pow023(-2)).toBeNaN();
  });
});
