/**
 * The gate's decision, as a pure function (like the TFX Evaluator's blessing): value thresholds
 * on the candidate's metrics, and change thresholds against a baseline (the model deployed in an
 * environment). Deploy and promotion reuse it with their own thresholds. The rules themselves
 * are in gate-rules.ts (value and change) and gate-slices.ts (per slice).
 */
import { thresholdSchema } from './threshold-schema.ts';
import { readEvalMetrics } from './slices/shape.ts';
import type { BootstrapOptions } from './slices/bootstrap.ts';
import { pairPredictions, type PredictionsFile } from './slices/predictions.ts';
import {
  PairedChanges,
  changeReason,
  evidenceFor,
  predictionsMatch,
  valueReasons,
  type GateReason,
  type ThresholdInput,
} from './gate-rules.ts';
import { sliceReasons } from './gate-slices.ts';

export interface Baseline {
  /** Environment whose deployed model this is (omitted: "baseline"). */
  env?: string;
  /** Commit of the environment branch head whose lockfile gave the metrics. */
  commit?: string;
  /**
   * Flat metrics (`f1_macro`, `intervals.f1_macro.lo`, `slices.speaker.S03.n`, ...): the
   * lockfile's headline metrics, with the slices of the evaluate out when they were read.
   */
  metrics: Record<string, number>;
  /**
   * The evaluate out holding the baseline's slices, when its lockfile leaves them out (the
   * lockfile's metrics then hold no `slices.` keys until they are read from it).
   */
  slicesOut?: string;
}

export interface GateVerdict {
  passed: boolean;
  baseline: Baseline | null;
  reasons: GateReason[];
}

/** Both models' per-clip predictions (out/eval/predictions.json of each). */
export interface PairedInput {
  candidate: PredictionsFile;
  baseline: PredictionsFile;
  /** Resampling of the paired difference (`evaluate.bootstrap`). */
  bootstrap: BootstrapOptions;
}

export interface GateInput {
  /** The candidate's metrics, flat (`flattenMetrics` of out/eval/metrics.json). */
  metrics: Record<string, number>;
  thresholds: ThresholdInput[];
  /** The deployed model's metrics; null or undefined: value thresholds only. */
  baseline?: Baseline | null;
  /**
   * Both models' predictions: change thresholds then use a paired bootstrap of the difference on
   * the clips both scored; without them (or on different clips), interval overlap.
   */
  paired?: PairedInput | null;
}

/** Evaluates every threshold; the gate passes when every reason passes. */
export function evaluateGate(input: GateInput): GateVerdict {
  const reasons: GateReason[] = [];
  const cand = readEvalMetrics(input.metrics);
  const baseline = input.baseline ?? null;
  const base = baseline ? readEvalMetrics(baseline.metrics) : null;
  const env = baseline?.env ?? 'baseline';
  const pairs =
    baseline && input.paired ? pairPredictions(input.paired.candidate, input.paired.baseline) : null;
  const paired =
    pairs && input.paired && base && predictionsMatch(pairs, base)
      ? new PairedChanges(pairs, input.paired.bootstrap)
      : null;
  for (const raw of input.thresholds) {
    const t = thresholdSchema.parse(raw);
    if (t.slice) {
      reasons.push(...sliceReasons(t, t.slice, cand, base, env, paired));
      continue;
    }
    const value = cand.metrics[t.metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      reasons.push({
        metric: t.metric,
        kind: 'value',
        passed: false,
        detail: `${t.metric}: missing from the candidate's metrics`,
      });
      continue;
    }
    reasons.push(...valueReasons(t, value, cand.intervals[t.metric], cand.confidence));
    if (t.tolerance === undefined || baseline === null || base === null) continue;
    const b = base.metrics[t.metric];
    if (typeof b !== 'number' || !Number.isFinite(b)) {
      reasons.push({
        metric: t.metric,
        kind: 'change',
        passed: true,
        detail: `${t.metric}: baseline${baseline.env ? ` ${baseline.env}` : ''} has no value; change not checked`,
      });
      continue;
    }
    const evidence = evidenceFor(
      t.metric,
      value,
      b,
      cand.intervals[t.metric],
      base.intervals[t.metric],
      paired?.of(),
    );
    reasons.push(changeReason(t, evidence, env, cand.confidence));
  }
  return { passed: reasons.every((r) => r.passed), baseline: input.baseline ?? null, reasons };
}

/** One line for the run summary: failed reasons first, else all. */
export function summarizeVerdict(v: GateVerdict): string {
  const failed = v.reasons.filter((r) => !r.passed);
  const shown = failed.length ? failed : v.reasons;
  const head = v.passed ? 'gate passed' : 'gate failed';
  const at = v.baseline?.commit ? `@${v.baseline.commit.slice(0, 7)}` : '';
  const against = v.baseline ? ` (baseline ${v.baseline.env ?? ''}${at})` : ' (no baseline)';
  return `${head}${against}: ${shown.map((r) => r.detail).join('; ') || 'no thresholds'}`;
}
