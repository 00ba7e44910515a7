/**
 * Canary analysis for one step: from the prediction logs since the step started, the canary's
 * error rate and p99 latency; with paired requests (the stable model's answer logged beside the
 * canary's, lib/canary/agreement.ts) the agreement of their predicted classes and the shift of
 * each class's score; without pairs, the L-infinity distance between the canary's and the stable
 * model's predicted-class distributions. Too few canary requests is "inconclusive" (hold).
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

/** Thresholds (promotion/<env>.yaml `canary.analysis`). */
export interface AnalysisThresholds extends Partial<AgreementThresholds> {
  max_error_rate: number;
  max_p99_ms: number;
  max_divergence: number;
  min_requests: number;
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
  const summary = parts.join(', ');
  const failures: string[] = [];
  const enough = canary.requests >= Math.max(1, t.min_requests);
  // Errors beyond what min_requests could ever dilute below the threshold fail early.
  const hopeless = canary.errors > t.max_error_rate * Math.max(canary.requests, t.min_requests);
  if (canary.errorRate > t.max_error_rate && (enough || hopeless))
    failures.push(`error rate ${pct(canary.errorRate)} > ${pct(t.max_error_rate)}`);
  if (enough && canary.p99Ms > t.max_p99_ms)
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
  if (!paired && enough && div !== undefined && div > t.max_divergence)
    failures.push(`score divergence ${div.toFixed(2)} > ${t.max_divergence}`);
  const verdict = failures.length > 0 ? 'fail' : enough ? 'pass' : 'inconclusive';
  return { verdict, canary, stable, divergence: div, paired, evidence, failures, summary };
}
