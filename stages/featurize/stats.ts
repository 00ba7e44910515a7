/**
 * Training-split histograms of each summary feature (`out/features/stats.json`), the reference
 * distribution for training/serving skew and drift checks.
 */

/** Bins per histogram. */
export const HISTOGRAM_BINS = 20;

export interface Histogram {
  /** BINS+1 ascending bin edges; the last bin includes its upper edge. */
  edges: number[];
  counts: number[];
}

/**
 * One histogram per feature over the `n` rows of `data` (n×D, row-major). A constant feature
 * gets edges spanning [v - 0.5, v + 0.5] so every value still falls in a bin.
 */
export function histograms(names: string[], data: Float32Array, n: number): Record<string, Histogram> {
  const D = names.length;
  const out: Record<string, Histogram> = {};
  for (let c = 0; c < D; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < n; r++) {
      const v = data[r * D + c];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!(hi > lo)) {
      lo = (Number.isFinite(lo) ? lo : 0) - 0.5;
      hi = lo + 1;
    }
    const width = (hi - lo) / HISTOGRAM_BINS;
    const edges = Array.from({ length: HISTOGRAM_BINS + 1 }, (_, i) =>
      i === HISTOGRAM_BINS ? hi : lo + i * width,
    );
    const counts = new Array<number>(HISTOGRAM_BINS).fill(0);
    for (let r = 0; r < n; r++) {
      const bin = Math.floor((data[r * D + c] - lo) / width);
      counts[Math.min(HISTOGRAM_BINS - 1, Math.max(0, bin))]++;
    }
    out[names[c]] = { edges, counts };
  }
  return out;
}
