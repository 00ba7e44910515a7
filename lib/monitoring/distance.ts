/**
 * Distribution distances with TFDV's definitions: Jensen-Shannon divergence between histograms
 * of a numeric feature (base-2 logarithm, so it lies in [0, 1]) and the L-infinity distance
 * between two categorical distributions (largest absolute difference of probabilities).
 */

/** Histogram over fixed edges, plus an underflow and an overflow bin at the ends. */
export interface BinnedHistogram {
  edges: number[];
  /** edges.length + 1 counts: [< edges[0]], one per bin, [> edges[last]]. */
  counts: number[];
}

/**
 * Counts `values` into the bins of `edges` (ascending; the last bin includes its upper edge),
 * with underflow and overflow bins so out-of-range serving values are seen, not clamped.
 * Non-finite values are skipped.
 */
export function binValues(values: ArrayLike<number>, edges: number[]): BinnedHistogram {
  const n = edges.length;
  const counts = new Array<number>(n + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < edges[0]) counts[0]++;
    else if (v > edges[n - 1]) counts[n]++;
    else {
      // Binary search for the bin: the largest i with edges[i] <= v (last bin closed).
      let lo = 0;
      let hi = n - 2;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (edges[mid] <= v) lo = mid;
        else hi = mid - 1;
      }
      counts[lo + 1]++;
    }
  }
  return { edges, counts };
}

/** Converts a histogram's `counts` (as saved by featurize, no under/overflow) to the binned form. */
export function withOverflowBins(h: { edges: number[]; counts: number[] }): BinnedHistogram {
  return { edges: h.edges, counts: [0, ...h.counts, 0] };
}

function normalize(counts: number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  return total > 0 ? counts.map((c) => c / total) : counts.map(() => 0);
}

/**
 * Jensen-Shannon divergence (base 2, in [0, 1]) between two count vectors over the same bins.
 * 0 for identical distributions; 1 for disjoint supports.
 */
export function jensenShannon(a: number[], b: number[]): number {
  if (a.length !== b.length) throw new Error(`jensenShannon: ${a.length} bins vs ${b.length}`);
  const p = normalize(a);
  const q = normalize(b);
  let js = 0;
  for (let i = 0; i < p.length; i++) {
    const m = (p[i] + q[i]) / 2;
    if (p[i] > 0) js += 0.5 * p[i] * Math.log2(p[i] / m);
    if (q[i] > 0) js += 0.5 * q[i] * Math.log2(q[i] / m);
  }
  return Math.max(0, Math.min(1, js));
}

/** L-infinity distance between two categorical distributions given as counts per category. */
export function lInfinity(a: Record<string, number>, b: Record<string, number>): number {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  const ta = Object.values(a).reduce((x, y) => x + y, 0);
  const tb = Object.values(b).reduce((x, y) => x + y, 0);
  let max = 0;
  for (const k of keys) {
    const pa = ta > 0 ? (a[k] ?? 0) / ta : 0;
    const pb = tb > 0 ? (b[k] ?? 0) / tb : 0;
    max = Math.max(max, Math.abs(pa - pb));
  }
  return max;
}

/** Quantile (linear interpolation) of an unsorted array; NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((x, y) => x - y);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
