/**
 * The amplitude spectrum of a real N-point frame through one N/2-point complex FFT: the caller
 * packs the samples as even + i·odd in bit-reversed order (`re[rev[j]] = x[2j]`,
 * `im[rev[j]] = x[2j+1]`, fused with its windowing pass), `transform` runs the radix-2
 * decimation-in-time FFT in place with its stages taken two at a time, and `amplitudes` splits
 * the half-size result into the real signal's spectrum |X[k]|, k < N/2. The arithmetic is that
 * of a plain radix-2 FFT; pairing stages only halves the passes over the buffers.
 */
export class RealFft {
  /** N, the real frame length (a power of two >= 16). */
  readonly size: number;
  /** Bit reversal for the N/2-point complex FFT. */
  readonly rev: Uint32Array;
  /** Packed input, then the N/2-point complex FFT (real and imaginary parts). */
  readonly re: Float64Array;
  readonly im: Float64Array;
  /** Twiddles per stage, concatenated: stage of length L holds e^{-2πik/L}, k < L/2, at L/2 - 1. */
  private readonly twRe: Float64Array;
  private readonly twIm: Float64Array;
  /** e^{-2πik/N}, k <= N/4: splits the packed half-size FFT into the real signal's spectrum. */
  private readonly splitRe: Float64Array;
  private readonly splitIm: Float64Array;

  constructor(n: number) {
    this.size = n;
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
    for (let len = 2; len <= m; len *= 2) {
      for (let k = 0; k < len / 2; k++) {
        const x = (-2 * Math.PI * k) / len;
        this.twRe[len / 2 - 1 + k] = Math.cos(x);
        this.twIm[len / 2 - 1 + k] = Math.sin(x);
      }
    }
    this.splitRe = new Float64Array(m / 2 + 1);
    this.splitIm = new Float64Array(m / 2 + 1);
    for (let k = 0; k <= m / 2; k++) {
      this.splitRe[k] = Math.cos((-2 * Math.PI * k) / n);
      this.splitIm[k] = Math.sin((-2 * Math.PI * k) / n);
    }
    this.re = new Float64Array(m);
    this.im = new Float64Array(m);
  }

  /** The N/2-point complex FFT of the packed `re`, `im`, in place. */
  transform(): void {
    const { re, im, twRe, twIm } = this;
    const m = this.size / 2;
    // Butterfly lengths 2 and 4 have twiddles 1 and -i only: fused, without multiplications.
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
    let len = 8;
    // An odd number of remaining stages: one on its own, the rest in pairs.
    if (Math.log2(m) % 2 === 1 && len <= m) {
      const h = len / 2;
      for (let k = 0; k < h; k++) {
        const wr = twRe[h - 1 + k];
        const wi = twIm[h - 1 + k];
        for (let e = k; e < m; e += len) {
          const o = e + h;
          const oRe = wr * re[o] - wi * im[o];
          const oIm = wr * im[o] + wi * re[o];
          const eRe = re[e];
          const eIm = im[e];
          re[o] = eRe - oRe;
          im[o] = eIm - oIm;
          re[e] = eRe + oRe;
          im[e] = eIm + oIm;
        }
      }
      len *= 2;
    }
    // Stages of lengths L and 2L at once on the four points k, k + L/2, k + L, k + 3L/2 of each
    // block of 2L: the first uses e^{-2πik/L} on both of its pairs, the second e^{-2πik/2L} and
    // e^{-2πi(k+L/2)/2L} = -i·e^{-2πik/2L}.
    for (; len * 2 <= m; len *= 4) {
      const h = len / 2;
      for (let k = 0; k < h; k++) {
        const ar = twRe[h - 1 + k];
        const ai = twIm[h - 1 + k];
        const br = twRe[len - 1 + k];
        const bi = twIm[len - 1 + k];
        for (let i0 = k; i0 < m; i0 += 2 * len) {
          const i1 = i0 + h;
          const i2 = i0 + len;
          const i3 = i2 + h;
          const t1r = ar * re[i1] - ai * im[i1];
          const t1i = ar * im[i1] + ai * re[i1];
          const t3r = ar * re[i3] - ai * im[i3];
          const t3i = ar * im[i3] + ai * re[i3];
          const x0r = re[i0];
          const x0i = im[i0];
          const x2r = re[i2];
          const x2i = im[i2];
          const a0r = x0r + t1r;
          const a0i = x0i + t1i;
          const a1r = x0r - t1r;
          const a1i = x0i - t1i;
          const a2r = x2r + t3r;
          const a2i = x2i + t3i;
          const a3r = x2r - t3r;
          const a3i = x2i - t3i;
          const u2r = br * a2r - bi * a2i;
          const u2i = br * a2i + bi * a2r;
          // -i · (b · a3)
          const u3r = br * a3i + bi * a3r;
          const u3i = -(br * a3r - bi * a3i);
          re[i0] = a0r + u2r;
          im[i0] = a0i + u2i;
          re[i2] = a0r - u2r;
          im[i2] = a0i - u2i;
          re[i1] = a1r + u3r;
          im[i1] = a1i + u3i;
          re[i3] = a1r - u3r;
          im[i3] = a1i - u3i;
        }
      }
    }
  }

  /**
   * |X[k]| for k < N/2 into `amp` (float32, as Meyda holds it) from the transformed buffers.
   * With Z the packed FFT, E[k] = (Z[k] + conj Z[m-k]) / 2 and O[k] = (Z[k] - conj Z[m-k]) / 2i,
   * X[k] = E[k] + W^k·O[k] and X[m-k] = conj(E[k] - W^k·O[k]): one pass over k <= m/2 gives both.
   */
  amplitudes(amp: Float32Array): void {
    const { re, im, splitRe, splitIm } = this;
    const m = this.size / 2;
    amp[0] = Math.abs(re[0] + im[0]);
    for (let k = 1, c = m - 1; k <= c; k++, c--) {
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
      const tr = wr * or - wi * oi;
      const ti = wr * oi + wi * or;
      const pr = er + tr;
      const pi = ei + ti;
      amp[k] = Math.sqrt(pr * pr + pi * pi);
      const qr = er - tr;
      const qi = ei - ti;
      amp[c] = Math.sqrt(qr * qr + qi * qi);
    }
  }
}
