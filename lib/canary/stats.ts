/**
 * The canary's two-sample tests (canary vs stable on the same window) and the sample sizes they
 * need. Distributions come from @stdlib; the statistics are the textbook ones, written so each
 * matches scipy's (the tests pin reference values computed with scipy 1.17):
 *
 * - predicted-class distribution: Pearson's chi-square on the 2 × K table of label counts
 *   (`scipy.stats.chi2_contingency(table, correction=False)`);
 * - error rate: pooled two-proportion z test, one-sided (canary higher);
 * - latency: Mann-Whitney U, one-sided (canary slower), normal approximation with tie and
 *   continuity correction (`scipy.stats.mannwhitneyu(c, s, alternative='greater',
 *   method='asymptotic')`).
 *
 * Power (how many canary requests a test needs to see the policy's minimum effect with the
 * policy's power at level alpha) is stated with each function. `k` is the ratio of stable to
 * canary requests (9 at a 10% step; 1 when both models see every request, as in a shadow step).
 */
import chisquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';
import chisquareQuantile from '@stdlib/stats-base-dists-chisquare-quantile';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';

export interface TestResult {
  statistic: number;
  pValue: number;
}

export interface ChiSquareResult extends TestResult {
  df: number;
}

const zq = (p: number) => normalQuantile(p, 0, 1);
const sf = (z: number) => 1 - normalCdf(z, 0, 1);

/**
 * Pearson's chi-square test of independence on two samples of labels (counts per label).
 * Labels seen by neither side are dropped; with fewer than two labels there is nothing to test
 * (statistic 0, p 1).
 */
export function chiSquareTest(a: Record<string, number>, b: Record<string, number>): ChiSquareResult {
  const labels = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter(
    (l) => (a[l] ?? 0) + (b[l] ?? 0) > 0,
  );
  const na = labels.reduce((s, l) => s + (a[l] ?? 0), 0);
  const nb = labels.reduce((s, l) => s + (b[l] ?? 0), 0);
  const n = na + nb;
  if (labels.length < 2 || na === 0 || nb === 0)
    return { statistic: 0, df: Math.max(0, labels.length - 1), pValue: 1 };
  let statistic = 0;
  for (const l of labels) {
    const col = (a[l] ?? 0) + (b[l] ?? 0);
    for (const [obs, row] of [
      [a[l] ?? 0, na],
      [b[l] ?? 0, nb],
    ]) {
      const expected = (row * col) / n;
      statistic += (obs - expected) ** 2 / expected;
    }
  }
  const df = labels.length - 1;
  return { statistic, df, pValue: 1 - chisquareCdf(statistic, df) };
}

/**
 * One-sided pooled two-proportion z test that x1/n1 (canary) is higher than x2/n2 (stable).
 * When neither or both sides always fail, there is no spread: z 0, p 1.
 */
export function twoProportionTest(x1: number, n1: number, x2: number, n2: number): TestResult {
  if (n1 === 0 || n2 === 0) return { statistic: 0, pValue: 1 };
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return { statistic: 0, pValue: 1 };
  const z = (x1 / n1 - x2 / n2) / se;
  return { statistic: z, pValue: sf(z) };
}

export interface MannWhitneyResult extends TestResult {
  /** The z score of U (tie and continuity corrected). */
  z: number;
  /** U / (n1 n2): the probability that a canary value exceeds a stable one (ties count half). */
  auc: number;
}

/**
 * One-sided Mann-Whitney U test that `x` (canary latencies) tends to be larger than `y` (stable).
 * statistic = U of x = R_x - n_x(n_x+1)/2 with average ranks for ties; σ² = n_x n_y / 12 ·
 * ((N+1) - Σ(t³-t) / (N(N-1))) over tie groups of size t; z = (U - n_x n_y / 2 - 0.5) / σ.
 */
export function mannWhitneyU(x: number[], y: number[]): MannWhitneyResult {
  const n1 = x.length;
  const n2 = y.length;
  if (n1 === 0 || n2 === 0) return { statistic: 0, z: 0, pValue: 1, auc: 0.5 };
  const all = [...x.map((v) => ({ v, mine: true })), ...y.map((v) => ({ v, mine: false }))].sort(
    (a, b) => a.v - b.v,
  );
  const n = all.length;
  let rankSum = 0;
  let ties = 0;
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && all[j + 1].v === all[i].v) j++;
    const t = j - i + 1;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (all[k].mine) rankSum += rank;
    ties += t * t * t - t;
    i = j + 1;
  }
  const u = rankSum - (n1 * (n1 + 1)) / 2;
  const variance = ((n1 * n2) / 12) * (n + 1 - ties / (n * (n - 1)));
  const auc = u / (n1 * n2);
  if (!(variance > 0)) return { statistic: u, z: 0, pValue: 1, auc };
  const z = (u - (n1 * n2) / 2 - 0.5) / Math.sqrt(variance);
  return { statistic: u, z, pValue: sf(z), auc };
}

/**
 * Power of the chi-square test with `df` degrees of freedom at level `alpha` against
 * noncentrality `lambda`, by Patnaik's approximation of the noncentral chi-square as a scaled
 * central one: χ'²(df, λ) ≈ h·χ²(ν), h = (df+2λ)/(df+λ), ν = (df+λ)²/(df+2λ).
 */
export function chiSquarePower(lambda: number, df: number, alpha: number): number {
  const critical = chisquareQuantile(1 - alpha, df);
  const h = (df + 2 * lambda) / (df + lambda);
  const nu = (df + lambda) ** 2 / (df + 2 * lambda);
  return 1 - chisquareCdf(critical / h, nu);
}

/**
 * Canary requests the class-distribution test needs to see an L∞ shift `delta` (one class's share
 * moving by `delta`, taken from another) with `power` at `alpha`. The least favourable table
 * puts both moving classes at share 1/2, where Cohen's w² = c(1-c)·4δ² with c the canary's share
 * of requests, so λ = N w² = 4 δ² n_canary k / (1 + k); the smallest λ reaching `power` (by
 * bisection on `chiSquarePower`) gives n_canary = λ (1 + k) / (4 δ² k).
 */
export function chiSquareRequestsNeeded(
  delta: number,
  df: number,
  alpha: number,
  power: number,
  k: number,
): number {
  // With one degree of freedom the test is the two-sided z test: λ = (z(1-α/2) + z(power))²
  // (Patnaik's approximation is 3% low there, and within 0.5% from df 3 on).
  if (df <= 1) {
    const lambda = (zq(1 - alpha / 2) + zq(power)) ** 2;
    return Math.ceil((lambda * (1 + k)) / (4 * delta * delta * k));
  }
  let lo = 0;
  let hi = 1;
  while (chiSquarePower(hi, df, alpha) < power) hi *= 2;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (chiSquarePower(mid, df, alpha) < power) lo = mid;
    else hi = mid;
  }
  return Math.ceil((hi * (1 + k)) / (4 * delta * delta * k));
}

/**
 * Canary requests the one-sided two-proportion test needs to see an error rate `delta` above the
 * stable rate `p0` with `power` at `alpha`, with k stable requests per canary request:
 * n = (z(1-α)·√(p̄(1-p̄)(1+1/k)) + z(power)·√(p1(1-p1) + p0(1-p0)/k))² / δ², p1 = p0 + δ,
 * p̄ = (p1 + k p0) / (1 + k).
 */
export function proportionRequestsNeeded(
  p0: number,
  delta: number,
  alpha: number,
  power: number,
  k: number,
): number {
  const p1 = Math.min(1, p0 + delta);
  const bar = (p1 + k * p0) / (1 + k);
  const a = zq(1 - alpha) * Math.sqrt(bar * (1 - bar) * (1 + 1 / k));
  const b = zq(power) * Math.sqrt(p1 * (1 - p1) + (p0 * (1 - p0)) / k);
  return Math.ceil((a + b) ** 2 / (delta * delta));
}

/**
 * Canary requests the one-sided Mann-Whitney test needs to see P(canary slower) = `auc` with
 * `power` at `alpha` (Noether 1987): N = (z(1-α) + z(power))² / (12 c (1-c) (auc - 1/2)²) requests
 * in all, c = 1/(1+k) of them canary's.
 */
export function mannWhitneyRequestsNeeded(auc: number, alpha: number, power: number, k: number): number {
  const c = 1 / (1 + k);
  const total = (zq(1 - alpha) + zq(power)) ** 2 / (12 * c * (1 - c) * (auc - 0.5) ** 2);
  return Math.ceil(total * c);
}

/** "p = 0.031", "p = 2.1e-7", or "p < 1e-16" (below what double precision tells apart from 0). */
export function describeP(p: number): string {
  return p < 1e-16 ? 'p < 1e-16' : `p = ${formatPValue(p)}`;
}

/** "0.031", "0.0004", "2.1e-7". */
export function formatPValue(p: number): string {
  if (p >= 0.01) return p.toFixed(3);
  if (p >= 0.0001) return p.toFixed(4);
  return p.toExponential(1);
}
