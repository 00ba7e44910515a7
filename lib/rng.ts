/**
 * Seeded pseudo-random numbers for training (mulberry32). Training never calls Math.random, so
 * the same seed, inputs and backend give the same weights.
 */

/** A seeded generator of floats in [0, 1). */
export interface Rng {
  next(): number;
  /** An integer seed derived from this stream (for tfjs initializers, which take a number). */
  nextSeed(): number;
}

/** Mulberry32: small, fast, and good enough for shuffling, dropout masks and seeds. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, nextSeed: () => Math.floor(next() * 2147483647) };
}

/** Fisher–Yates shuffle of `0..n-1` driven by `rng`. */
export function shuffledIndices(n: number, rng: Rng): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const tmp = idx[i];
    idx[i] = idx[j];
    idx[j] = tmp;
  }
  return idx;
}

/**
 * An inverted-dropout mask: each entry is 0 with probability `rate`, else `1 / (1 - rate)`, so
 * activations keep their expected value and inference needs no rescaling.
 */
export function dropoutMask(size: number, rate: number, rng: Rng): Float32Array {
  const mask = new Float32Array(size);
  const keep = 1 - rate;
  for (let i = 0; i < size; i++) mask[i] = rng.next() < keep ? 1 / keep : 0;
  return mask;
}
