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

/**
 * Jensen-Shannon divergence minus its expected value under "same distribution" for these
 * sample sizes, floored at 0. Under the null, 4·n·ln2·JS is a G statistic ~ χ²(k-1) (k
 * occupied bins), so E[JS] ≈ (k-1)/(8·ln2)·(1/n₁ + 1/n₂): about 0.09 for 22 bins and 84
 * samples a side, and 0.004 for 2,000. Without the correction a small window alerts on noise.
 */
export function jensenShannonCorrected(
  a: number[],
  b: number[],
): { js: number; corrected: number; pValue: number } {
  const n1 = a.reduce((x, y) => x + y, 0);
  const n2 = b.reduce((x, y) => x + y, 0);
  if (n1 === 0 || n2 === 0) return { js: jensenShannon(a, b), corrected: jensenShannon(a, b), pValue: 1 };
  // The χ² approximation needs about 5 expected observations per bin and sample: merge
  // adjacent bins until the pooled count reaches 10 (large samples keep every bin).
  const ma: number[] = [];
  const mb: number[] = [];
  let ca = 0;
  let cb = 0;
  for (let i = 0; i < a.length; i++) {
    ca += a[i];
    cb += b[i];
    if (ca + cb >= 10) {
      ma.push(ca);
      mb.push(cb);
      ca = cb = 0;
    }
  }
  if (ca + cb > 0) {
    if (ma.length === 0) {
      ma.push(ca);
      mb.push(cb);
    } else {
      ma[ma.length - 1] += ca;
      mb[mb.length - 1] += cb;
    }
  }
  const js = jensenShannon(ma, mb);
  const k = ma.length;
  const scale = 1 / n1 + 1 / n2;
  const bias = (Math.max(0, k - 1) / (8 * Math.LN2)) * scale;
  // The same approximation gives a p-value: G = 8·ln2·JS / (1/n₁ + 1/n₂) ~ χ²(k-1).
  const g = (8 * Math.LN2 * js) / scale;
  return { js, corrected: Math.max(0, js - bias), pValue: k > 1 ? chiSquareSurvival(g, k - 1) : 1 };
}

/** Pearson χ² test of homogeneity of two categorical samples (counts per category): p-value. */
export function categoricalPValue(a: Record<string, number>, b: Record<string, number>): number {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  const n1 = keys.reduce((s, k) => s + (a[k] ?? 0), 0);
  const n2 = keys.reduce((s, k) => s + (b[k] ?? 0), 0);
  if (n1 === 0 || n2 === 0 || keys.length < 2) return 1;
  let chi = 0;
  for (const k of keys) {
    const total = (a[k] ?? 0) + (b[k] ?? 0);
    const e1 = (total * n1) / (n1 + n2);
    const e2 = (total * n2) / (n1 + n2);
    chi += ((a[k] ?? 0) - e1) ** 2 / e1 + ((b[k] ?? 0) - e2) ** 2 / e2;
  }
  return chiSquareSurvival(chi, keys.length - 1);
}

/** P(X > x) for X ~ χ²(dof): the regularized upper incomplete gamma Q(dof/2, x/2). */
export function chiSquareSurvival(x: number, dof: number): number {
  if (x <= 0) return 1;
  return upperGammaQ(dof / 2, x / 2);
}

function logGamma(z: number): number {
  // Lanczos approximation (g = 7, n = 9).
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - logGamma(1 - z);
  z -= 1;
  let x = c[0];
  for (let i = 1; i < 9; i++) x += c[i] / (z + i);
  const t = z + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(x);
}

/** Regularized upper incomplete gamma Q(a, x): series below a+1, continued fraction above. */
function upperGammaQ(a: number, x: number): number {
  const gln = logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let del = sum;
    for (let n = 1; n < 500; n++) {
      del *= x / (a + n);
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-15) break;
    }
    return Math.max(0, 1 - sum * Math.exp(-x + a * Math.log(x) - gln));
  }
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - gln) * h);
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
