/**
 * Label-free evidence that a canary answers differently from the stable model. While a canary is
 * in progress the local server predicts every canary-routed instance with the stable model too
 * and logs that answer beside the served one (`shadow`), so each such instance is a pair: the
 * same input, both models. From the pairs:
 *
 * - agreement: the fraction of pairs where both models predict the same class, tested with a
 *   one-sided exact binomial test against the agreement required, `min_agreement` × the
 *   stable-vs-stable baseline (how often the stable model agrees with itself on repeated
 *   identical inputs; 100% for deterministic inference, lower where replicas differ);
 * - score shift: per class, the mean difference of the candidate's and the stable model's score,
 *   tested with a one-sided z test against `max_score_shift`.
 *
 * Where no pairs exist (a weighted split with no shadow, e.g. Vertex AI) the evidence is the
 * predicted-class distribution of each side (lib/canary/analysis.ts), and `unpairedRequestsNeeded`
 * says how many canary requests that needs to see a given shift.
 */
import binomialCdf from '@stdlib/stats-base-dists-binomial-cdf';
import normalCdf from '@stdlib/stats-base-dists-normal-cdf';
import normalQuantile from '@stdlib/stats-base-dists-normal-quantile';
import type { PredictionLogEntry } from '../serving/logs.ts';

export interface AgreementThresholds {
  /** Fraction of the stable-vs-stable agreement a candidate must keep (0..1). */
  min_agreement: number;
  /** Largest allowed mean shift of one class's score between candidate and stable (0..1). */
  max_score_shift: number;
  /** Significance level of both tests. */
  alpha: number;
}

export interface ScoreShift {
  label: string;
  /** Mean of candidate score - stable score over the pairs. */
  shift: number;
  /** One-sided p-value that |shift| exceeds `max_score_shift`'s complement (small: it does). */
  pValue: number;
}

export interface PairedEvidence {
  /** Canary-answered instances with the stable model's answer beside them. */
  pairs: number;
  /** Pairs where both predicted the same class. */
  agreements: number;
  agreement: number;
  /** Stable vs stable on repeated identical inputs (undefined: none repeated, taken as 1). */
  baseline: { pairs: number; agreements: number; agreement: number } | undefined;
  /** Agreement the candidate must reach: `min_agreement` × baseline. */
  required: number;
  /** P(at most `agreements` agreeing pairs | agreement = required): small means significantly below. */
  pValue: number;
  /** The class whose mean score moved most. */
  largestShift: ScoreShift | undefined;
}

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

/** "1.2e-5" or "0.031". */
export function formatP(p: number): string {
  return p < 0.001 ? p.toExponential(1) : p.toFixed(3);
}

/** Identical inputs give identical raw summaries, so the summary names an input. */
function inputKey(e: PredictionLogEntry): string | undefined {
  return e.summary && e.summary.length > 0 ? e.summary.join(',') : undefined;
}

/**
 * How often the stable model agrees with itself on an input it answered more than once (its own
 * answers and its shadow answers): each repeat is compared with the first answer for that input.
 */
function stableBaseline(entries: PredictionLogEntry[], stableId: string): PairedEvidence['baseline'] {
  const first = new Map<string, string>();
  let pairs = 0;
  let agreements = 0;
  const see = (key: string | undefined, label: string | undefined) => {
    if (key === undefined || label === undefined) return;
    const seen = first.get(key);
    if (seen === undefined) first.set(key, label);
    else {
      pairs++;
      if (seen === label) agreements++;
    }
  };
  for (const e of entries) {
    if (e.status !== 'ok') continue;
    if (e.deployedModelId === stableId) see(inputKey(e), e.label);
    // A shadow step's entry carries the answered prediction again, not a second one.
    else if (e.shadow?.deployedModelId === stableId && e.role !== 'shadow') see(inputKey(e), e.shadow.label);
  }
  return pairs > 0 ? { pairs, agreements, agreement: agreements / pairs } : undefined;
}

/** Paired evidence for the canary `canaryId` against `stableId`, or undefined without pairs. */
export function pairedEvidence(
  entries: PredictionLogEntry[],
  canaryId: string,
  stableId: string,
  t: AgreementThresholds,
): PairedEvidence | undefined {
  const paired = entries.filter(
    (e) =>
      e.status === 'ok' &&
      e.deployedModelId === canaryId &&
      e.label !== undefined &&
      e.shadow?.deployedModelId === stableId,
  );
  if (paired.length === 0) return undefined;
  const agreements = paired.filter((e) => e.label === e.shadow!.label).length;
  const baseline = stableBaseline(entries, stableId);
  const required = t.min_agreement * (baseline?.agreement ?? 1);
  const n = paired.length;
  const pValue = binomialCdf(agreements, n, Math.min(1, Math.max(0, required)));

  const labels = new Set<string>();
  for (const e of paired) {
    for (const l of Object.keys(e.scores ?? {})) labels.add(l);
    for (const l of Object.keys(e.shadow!.scores)) labels.add(l);
  }
  let largestShift: ScoreShift | undefined;
  for (const label of labels) {
    const d = paired.map((e) => (e.scores?.[label] ?? 0) - (e.shadow!.scores[label] ?? 0));
    const mean = d.reduce((s, x) => s + x, 0) / n;
    const variance = n > 1 ? d.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1) : 0;
    const se = Math.sqrt(variance / n);
    // H0: |shift| <= max_score_shift. With no spread at all, any excess is certain.
    const excess = Math.abs(mean) - t.max_score_shift;
    const pValue = se > 0 ? 1 - normalCdf(excess / se, 0, 1) : excess > 0 ? 0 : 1;
    if (!largestShift || Math.abs(mean) > Math.abs(largestShift.shift))
      largestShift = { label, shift: mean, pValue };
  }
  return { pairs: n, agreements, agreement: agreements / n, baseline, required, pValue, largestShift };
}

/** True when the agreement is significantly below what is required. */
export function isAgreementTooLow(e: PairedEvidence, t: AgreementThresholds): boolean {
  return e.pValue < t.alpha;
}

/** True when one class's mean score moved significantly more than `max_score_shift`. */
export function isScoreShifted(e: PairedEvidence, t: AgreementThresholds): boolean {
  return e.largestShift !== undefined && e.largestShift.pValue < t.alpha;
}

/** "agreement with stable 31% (12/39 paired requests) vs 70% required (stable-vs-stable 100%, 18 repeats)" */
export function describeAgreement(e: PairedEvidence): string {
  const base = e.baseline
    ? `stable-vs-stable ${pct(e.baseline.agreement)} on ${e.baseline.pairs} repeated inputs`
    : 'stable-vs-stable taken as 100%: no repeated inputs';
  return `agreement with stable ${pct(e.agreement)} (${e.agreements}/${e.pairs} paired requests) vs ${pct(e.required)} required (${base})`;
}

/** "largest class score shift happy +0.41" */
export function describeShift(e: PairedEvidence): string {
  const s = e.largestShift;
  if (!s) return 'no class scores';
  return `largest class score shift ${s.label} ${s.shift >= 0 ? '+' : ''}${s.shift.toFixed(2)}`;
}

/**
 * Canary requests needed, without pairs, to see a shift of `shift` in one class's predicted
 * share between canary and stable (two-proportion test, two-sided `alpha`, `power`), taking the
 * worst case share p = 0.5: n = (z(1-alpha/2) + z(power))^2 * 2p(1-p) / shift^2, per side.
 */
export function unpairedRequestsNeeded(shift: number, alpha: number, power = 0.8): number {
  const z = normalQuantile(1 - alpha / 2, 0, 1) + normalQuantile(power, 0, 1);
  return Math.ceil((z * z * 2 * 0.25) / (shift * shift));
}
