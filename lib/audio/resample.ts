/**
 * Band-limited sample-rate conversion: a Kaiser-windowed sinc low-pass evaluated at each output
 * instant (polyphase: for a rational ratio L/M the kernel only takes L distinct fractional
 * offsets, so each is tabulated once, on first use). When L is larger than MAX_PHASES (an odd
 * rate such as 191999 Hz) the offset is rounded to the nearest of MAX_PHASES phases (a timing
 * error under 1/8192 of an input sample), so the work is one kernel row per phase used plus one
 * dot product per output: proportional to the samples, whatever the rates. Pure double
 * arithmetic in a fixed order, so the output is bit-for-bit deterministic on every machine and
 * thread.
 */

export interface ResampleOptions {
  /** Zero crossings of the sinc on each side of the centre (filter length ≈ 2·zeros/cutoff). Default 16. */
  zeros?: number;
  /** Kaiser window beta (stop-band ≈ -80 dB at 8.6). Default 8.6. */
  beta?: number;
  /** Pass-band edge as a fraction of the lower Nyquist frequency. Default 0.94. */
  rolloff?: number;
  /** Produce at most this many output samples (later ones are not computed). */
  maxLength?: number;
}

/** Largest number of polyphase kernels tabulated; odder ratios round to the nearest of these. */
const MAX_PHASES = 4096;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind (series; converges fast for beta < 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 64; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/**
 * Resamples `input` (mono, `from` Hz) to `to` Hz. Same rate returns a copy. Samples outside the
 * input are treated as zero. Output length is `ceil(input.length * to / from)` (capped by
 * `maxLength`).
 */
export function resample(
  input: Float32Array,
  from: number,
  to: number,
  options: ResampleOptions = {},
): Float32Array {
  if (!(from > 0) || !(to > 0) || !Number.isInteger(from) || !Number.isInteger(to)) {
    throw new RangeError(`resample: sample rates must be positive integers, got ${from} -> ${to}`);
  }
  const fullLength = Math.ceil((input.length * to) / from);
  const outLength = Math.min(fullLength, options.maxLength ?? fullLength);
  if (from === to) return input.slice(0, outLength);

  const zeros = options.zeros ?? 16;
  const beta = options.beta ?? 8.6;
  const rolloff = options.rolloff ?? 0.94;
  // Cut-off in cycles per input sample: below the lower of the two Nyquist frequencies.
  const cutoff = 0.5 * Math.min(1, to / from) * rolloff;
  // Kernel half-width in input samples: `zeros` zero crossings of sinc(2·cutoff·x).
  const halfWidth = zeros / (2 * cutoff);
  const i0Beta = besselI0(beta);
  const kernel = (x: number): number => {
    const r = x / halfWidth;
    if (r <= -1 || r >= 1) return 0;
    const w = besselI0(beta * Math.sqrt(1 - r * r)) / i0Beta;
    const arg = 2 * cutoff * x;
    const sinc = arg === 0 ? 1 : Math.sin(Math.PI * arg) / (Math.PI * arg);
    return 2 * cutoff * sinc * w;
  };

  const g = gcd(from, to);
  const up = to / g; // L: output samples per period
  const down = from / g; // M: input samples per period
  const taps = Math.ceil(halfWidth) + 1;
  const span = 2 * taps;
  const out = new Float32Array(outLength);
  const n = input.length;

  // Output j sits at input time t = j·M/L = base + phase/L, base = floor(j·M/L). With more than
  // MAX_PHASES phases, phase/L is rounded to q/MAX_PHASES (q = MAX_PHASES carries into base).
  const phases = Math.min(up, MAX_PHASES);
  const rows: (Float64Array | undefined)[] = new Array(phases);
  const rowFor = (p: number): Float64Array => {
    let row = rows[p];
    if (!row) {
      row = new Float64Array(span);
      const frac = p / phases;
      for (let k = 0; k < span; k++) row[k] = kernel(k - taps + 1 - frac);
      rows[p] = row;
    }
    return row;
  };
  for (let j = 0; j < outLength; j++) {
    const num = j * down;
    let base = Math.floor(num / up);
    let phase = num - base * up;
    if (up > MAX_PHASES) {
      phase = Math.round((phase * MAX_PHASES) / up);
      if (phase === MAX_PHASES) {
        phase = 0;
        base++;
      }
    }
    const coeffs = rowFor(phase);
    const start = base - taps + 1;
    const kLo = Math.max(0, -start);
    const kHi = Math.min(span, n - start);
    let acc = 0;
    for (let k = kLo; k < kHi; k++) acc += input[start + k] * coeffs[k];
    out[j] = acc;
  }
  return out;
}
