/**
 * Canary analysis for one step: from the prediction logs since the step started, the canary's
 * error rate and p99 latency; with paired requests (the stable model's answer logged beside the
 * canary's, lib/canary/agreement.ts) the agreement of their predicted classes and the shift of
 * each class's score; without pairs, the L-infinity distance between the canary's and the stable
 * model's predicted-class distributions. Beside those fixed limits (hard guards), three tests
 * compare canary and stable on the same window (lib/canary/stats.ts): the predicted-class
 * distribution (chi-square), the error rate (two-proportion z) and latency (Mann-Whitney U). A
 * test fails a step when it is significant at `alpha` and its effect reaches `min_effect`; a step
 * passes only once each test has the power to see `min_effect`, so too few canary requests is
 * "inconclusive" (hold) with how many more are needed.
 */
import type { PredictionLogEntry } from '../serving/logs.ts';
import {
  describeAgreement,
  describeShift,
  formatP,
  isAgreementTooLow,
  isScoreShifted,
  pairedEvidence,
  unpairedRequestsNeeded,
  type AgreementThresholds,
  type PairedEvidence,
} from './agreement.ts';
import {
  chiSquareRequestsNeeded,
  chiSquareTest,
  describeP,
  mannWhitneyRequestsNeeded,
  mannWhitneyU,
  proportionRequestsNeeded,
  twoProportionTest,
} from './stats.ts';

/** Smallest differences from stable worth a rollback (promotion/<env>.yaml `canary.analysis.min_effect`). */
export interface MinEffect {
  class_share: number;
  error_rate: number;
  latency_auc: number;
}

/** Thresholds (promotion/<env>.yaml `canary.analysis`). */
export interface AnalysisThresholds extends Partial<AgreementThresholds> {
  max_error_rate: number;
  max_p99_ms: number;
  max_divergence: number;
  min_requests: number;
  /** Power the statistical tests need before a step passes (default 0.8). */
  power?: number;
  min_effect?: Partial<MinEffect>;
}

export const MIN_EFFECT_DEFAULTS: MinEffect = { class_share: 0.1, error_rate: 0.02, latency_auc: 0.6 };

/** One two-sample test of canary against stable. */
export interface StatTest {
  test: 'class distribution' | 'error rate' | 'latency';
  /** "chi-square", "two-proportion z", "Mann-Whitney U". */
  method: string;
  statistic: number;
  pValue: number;
  /** L∞ of class shares; canary minus stable error rate; P(canary slower). */
  effect: number;
  minEffect: number;
  /** Canary requests this test needs to see `minEffect` with the policy's power. */
  needed: number;
  /** The power calculation, in words. */
  powerBasis: string;
  /** Significant at alpha and at least `minEffect`. */
  failed: boolean;
  /** "class distribution differs from stable (χ² = 31.2, p = 0.0004, L∞ 0.18)" */
  description: string;
}

/** Defaults of the paired-evidence thresholds (the policy schema carries the same). */
export const AGREEMENT_DEFAULTS: AgreementThresholds = {
  min_agreement: 0.7,
  max_score_shift: 0.2,
  alpha: 0.01,
};

export interface Observation {
  /** Routed requests (ok + error + rejected by input checks; malformed ones are not counted). */
  requests: number;
  /** Model failures and requests refused by the model's input checks. */
  errors: number;
  errorRate: number;
  /** p99 latency of all counted requests, ms (0 when none). */
  p99Ms: number;
  /** Predicted label -> fraction of successful predictions. */
  distribution: Record<string, number>;
}

export interface Analysis {
  verdict: 'pass' | 'fail' | 'inconclusive';
  canary: Observation;
  stable?: Observation;
  /** L-infinity distance of predicted-class distributions (undefined without stable traffic). */
  divergence?: number;
  /** Canary and stable on the same requests (undefined without shadow predictions). */
  paired?: PairedEvidence;
  /** Which evidence judged the model's answers: paired requests, or the class distributions. */
  evidence: 'paired' | 'distribution' | 'none';
  /** The class-distribution, error-rate and latency tests (empty without stable traffic). */
  tests: StatTest[];
  /** Canary requests needed before the step can pass: max(min_requests, every test's need). */
  needed: number;
  /** Why that many, when a test's power sets it. */
  neededBy?: string;
  /** Failed checks, one phrase each ("error rate 12.0% > 1.0%"). */
  failures: string[];
  /** "error rate 0.0%, p99 18 ms, score divergence 0.04 vs stable" */
  summary: string;
}

/** Nearest-rank percentile of `values` (0 for an empty list). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/** The log entries of one deployed model that count (malformed requests never reached it). */
function entriesOf(entries: PredictionLogEntry[], deployedModelId: string | undefined): PredictionLogEntry[] {
  return entries.filter(
    (e) => deployedModelId !== undefined && e.deployedModelId === deployedModelId && e.status !== 'invalid',
  );
}

function labelCounts(entries: PredictionLogEntry[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of entries) if (e.status === 'ok' && e.label) counts[e.label] = (counts[e.label] ?? 0) + 1;
  return counts;
}

const okLatencies = (entries: PredictionLogEntry[]) =>
  entries.filter((e) => e.status === 'ok').map((e) => e.latencyMs);

/**
 * Canary vs stable on the same window. `k` is stable requests per canary request (observed, or
 * from the traffic split before there is traffic). The paired evidence of a shadow step compares
 * the same requests; the two-sample tests then overstate the variance of a difference (positively
 * correlated samples), so they stay valid, only conservative.
 */
export function compareWithStable(
  canary: PredictionLogEntry[],
  stable: PredictionLogEntry[],
  k: number,
  t: AnalysisThresholds,
): StatTest[] {
  const alpha = t.alpha ?? AGREEMENT_DEFAULTS.alpha;
  const power = t.power ?? 0.8;
  const min = { ...MIN_EFFECT_DEFAULTS, ...t.min_effect };
  const tests: StatTest[] = [];
  const pw = `${Math.round(power * 100)}% power at α ${alpha}`;

  const cc = labelCounts(canary);
  const sc = labelCounts(stable);
  const chi = chiSquareTest(cc, sc);
  const share = (c: Record<string, number>) => {
    const n = Object.values(c).reduce((a, b) => a + b, 0);
    return Object.fromEntries(Object.entries(c).map(([l, v]) => [l, n ? v / n : 0]));
  };
  const linf = divergence(share(cc), share(sc));
  const df = Math.max(1, chi.df);
  tests.push({
    test: 'class distribution',
    method: 'chi-square',
    statistic: chi.statistic,
    pValue: chi.pValue,
    effect: linf,
    minEffect: min.class_share,
    needed: chiSquareRequestsNeeded(min.class_share, df, alpha, power, k),
    powerBasis: `chi-square (df ${df}) to see an L∞ class-share shift of ${min.class_share} with ${pw}, ${fmtK(k)}`,
    failed: chi.pValue < alpha && linf >= min.class_share,
    description: `class distribution differs from stable (χ² = ${chi.statistic.toFixed(1)}, df ${chi.df}, ${describeP(chi.pValue)}, L∞ ${linf.toFixed(2)})`,
  });

  const errs = (es: PredictionLogEntry[]) =>
    es.filter((e) => e.status === 'error' || e.status === 'rejected').length;
  const ce = errs(canary);
  const se = errs(stable);
  const prop = twoProportionTest(ce, canary.length, se, stable.length);
  const cr = canary.length ? ce / canary.length : 0;
  const sr = stable.length ? se / stable.length : 0;
  tests.push({
    test: 'error rate',
    method: 'two-proportion z',
    statistic: prop.statistic,
    pValue: prop.pValue,
    effect: cr - sr,
    minEffect: min.error_rate,
    needed: proportionRequestsNeeded(Math.min(sr, 1 - min.error_rate), min.error_rate, alpha, power, k),
    powerBasis: `one-sided two-proportion z to see an error rate ${min.error_rate} above stable's ${pct(sr)} with ${pw}, ${fmtK(k)}`,
    failed: prop.pValue < alpha && cr - sr >= min.error_rate,
    description: `error rate higher than stable (z = ${prop.statistic.toFixed(2)}, ${describeP(prop.pValue)}, ${pct(cr)} vs ${pct(sr)})`,
  });

  const cl = okLatencies(canary);
  const sl = okLatencies(stable);
  const mw = mannWhitneyU(cl, sl);
  const medianDiff = median(cl) - median(sl);
  tests.push({
    test: 'latency',
    method: 'Mann-Whitney U',
    statistic: mw.statistic,
    pValue: mw.pValue,
    effect: mw.auc,
    minEffect: min.latency_auc,
    needed: mannWhitneyRequestsNeeded(min.latency_auc, alpha, power, k),
    powerBasis: `one-sided Mann-Whitney U to see P(canary slower) ${min.latency_auc} with ${pw}, ${fmtK(k)} (Noether)`,
    failed: mw.pValue < alpha && mw.auc >= min.latency_auc,
    description: `latency higher than stable (Mann-Whitney U = ${mw.statistic}, z = ${mw.z.toFixed(2)}, ${describeP(mw.pValue)}, P(slower) ${mw.auc.toFixed(2)}, median ${medianDiff >= 0 ? '+' : ''}${medianDiff.toFixed(1)} ms)`,
  });
  return tests;
}

function fmtK(k: number): string {
  return `${Number.isInteger(k) ? k : k.toFixed(1)} stable per canary request`;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Summarizes one deployed model's log entries. */
export function observe(entries: PredictionLogEntry[], deployedModelId: string | undefined): Observation {
  const mine = entries.filter(
    (e) => deployedModelId !== undefined && e.deployedModelId === deployedModelId && e.status !== 'invalid',
  );
  // A request the model's input checks refused counts like an error: a candidate whose schema
  // refuses what the stable model answers must not be promoted on its remaining traffic.
  const errors = mine.filter((e) => e.status === 'error' || e.status === 'rejected').length;
  const counts: Record<string, number> = {};
  let ok = 0;
  for (const e of mine) {
    if (e.status !== 'ok' || !e.label) continue;
    counts[e.label] = (counts[e.label] ?? 0) + 1;
    ok++;
  }
  const distribution: Record<string, number> = {};
  for (const [label, n] of Object.entries(counts)) distribution[label] = n / ok;
  return {
    requests: mine.length,
    errors,
    errorRate: mine.length ? errors / mine.length : 0,
    p99Ms: percentile(
      mine.map((e) => e.latencyMs),
      99,
    ),
    distribution,
  };
}

/** L-infinity distance between two label distributions (labels missing on one side count as 0). */
export function divergence(a: Record<string, number>, b: Record<string, number>): number {
  let d = 0;
  for (const label of new Set([...Object.keys(a), ...Object.keys(b)]))
    d = Math.max(d, Math.abs((a[label] ?? 0) - (b[label] ?? 0)));
  return d;
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const pct0 = (x: number) => `${(x * 100).toFixed(0)}%`;

/**
 * Judges one step. Errors and latency are judged as soon as there is any canary traffic with
 * errors (a failing canary is rolled back without waiting for `min_requests`); otherwise fewer
 * than `min_requests` canary requests is inconclusive.
 */
export function analyzeStep(
  entries: PredictionLogEntry[],
  canaryId: string,
  stableId: string | undefined,
  t: AnalysisThresholds,
  step: { percent?: number; shadow?: boolean } = {},
): Analysis {
  const at: AgreementThresholds = {
    min_agreement: t.min_agreement ?? AGREEMENT_DEFAULTS.min_agreement,
    max_score_shift: t.max_score_shift ?? AGREEMENT_DEFAULTS.max_score_shift,
    alpha: t.alpha ?? AGREEMENT_DEFAULTS.alpha,
  };
  const canary = observe(entries, canaryId);
  const stable = stableId ? observe(entries, stableId) : undefined;
  const paired = stableId ? pairedEvidence(entries, canaryId, stableId, at) : undefined;
  const hasStable =
    stable !== undefined && stable.requests - stable.errors > 0 && canary.requests - canary.errors > 0;
  const div = hasStable ? divergence(canary.distribution, stable!.distribution) : undefined;
  const evidence = paired ? 'paired' : div !== undefined ? 'distribution' : 'none';
  const parts = [`error rate ${pct(canary.errorRate)}`, `p99 ${Math.round(canary.p99Ms)} ms`];
  if (paired) parts.push(describeAgreement(paired), describeShift(paired));
  else if (div !== undefined)
    parts.push(
      `score divergence ${div.toFixed(2)} vs stable (no paired requests: class distributions; ${unpairedRequestsNeeded(t.max_divergence, at.alpha)} canary requests see a ${t.max_divergence} shift)`,
    );
  // Stable requests per canary request: observed once both have traffic, else from the split.
  const mine = entriesOf(entries, canaryId);
  const theirs = entriesOf(entries, stableId);
  const k = step.shadow
    ? 1
    : mine.length > 0 && theirs.length > 0
      ? theirs.length / mine.length
      : step.percent && step.percent < 100
        ? (100 - step.percent) / step.percent
        : 1;
  const tests = stableId && theirs.length > 0 ? compareWithStable(mine, theirs, k, t) : [];
  let needed = Math.max(1, t.min_requests);
  let neededBy: string | undefined;
  for (const x of tests)
    if (x.needed > needed) {
      needed = x.needed;
      neededBy = x.powerBasis;
    }
  for (const x of tests) if (!x.failed) parts.push(`${x.test} ${x.method} ${describeP(x.pValue)}`);
  const summary = parts.join(', ');
  const failures: string[] = [];
  const enough = canary.requests >= needed;
  // The fixed limits are hard guards: judged from min_requests on, whatever the tests' power.
  const floor = canary.requests >= Math.max(1, t.min_requests);
  // Errors beyond what min_requests could ever dilute below the threshold fail early.
  const hopeless = canary.errors > t.max_error_rate * Math.max(canary.requests, t.min_requests);
  if (canary.errorRate > t.max_error_rate && (floor || hopeless))
    failures.push(`error rate ${pct(canary.errorRate)} > ${pct(t.max_error_rate)}`);
  if (floor && canary.p99Ms > t.max_p99_ms)
    failures.push(`p99 ${Math.round(canary.p99Ms)} ms > ${t.max_p99_ms} ms`);
  // An exact test is valid at any sample size, so significant disagreement fails before min_requests.
  if (paired && isAgreementTooLow(paired, at))
    failures.push(
      `agreement with stable ${pct0(paired.agreement)} (${paired.agreements}/${paired.pairs} paired requests) is significantly below the ${pct0(paired.required)} required (one-sided exact binomial test p=${formatP(paired.pValue)} < ${at.alpha})`,
    );
  if (paired && isScoreShifted(paired, at)) {
    const s = paired.largestShift!;
    failures.push(
      `class "${s.label}" score shifted ${s.shift >= 0 ? '+' : ''}${s.shift.toFixed(2)} vs stable on ${paired.pairs} paired requests, significantly more than ${at.max_score_shift} (one-sided z test p=${formatP(s.pValue)} < ${at.alpha})`,
    );
  }
  if (!paired && floor && div !== undefined && div > t.max_divergence)
    failures.push(`score divergence ${div.toFixed(2)} > ${t.max_divergence}`);
  // A significant test may fail a step before it has full power: the evidence is already there.
  for (const x of tests) if (x.failed) failures.push(x.description);
  const verdict = failures.length > 0 ? 'fail' : enough ? 'pass' : 'inconclusive';
  return {
    verdict,
    canary,
    stable,
    divergence: div,
    paired,
    evidence,
    tests,
    needed,
    ...(neededBy ? { neededBy } : {}),
    failures,
    summary,
  };
}
