/**
 * The gate's rule vocabulary and the checks shared by whole-split and per-slice thresholds: a
 * value bound (min / max), and a change against the baseline judged by a paired bootstrap of the
 * difference when both models' predictions are there, else by interval overlap or the point.
 */
import type { z } from 'zod';
import { thresholdSchema, type SliceKind } from './threshold-schema.ts';
import { describeChange, judgeChange, type ChangeEvidence, type ChangeMethod } from './slices/change.ts';
import type { EvalMetrics, Interval } from './slices/shape.ts';
import { pairedDifferenceIntervals, type BootstrapOptions } from './slices/bootstrap.ts';
import { createScorer } from './slices/scorer.ts';
import type { PairedPredictions } from './slices/predictions.ts';

/** One threshold from params.yaml `gate.thresholds` or `promotion/<env>.yaml`. */
export type Threshold = z.infer<typeof thresholdSchema>;
/** A threshold as written (defaults not yet applied). */
export type ThresholdInput = z.input<typeof thresholdSchema>;

export interface GateReason {
  metric: string;
  /** `value`: a min / max bound; `change`: against the baseline; `gap`: best vs worst slice. */
  kind: 'value' | 'change' | 'gap';
  passed: boolean;
  detail: string;
  /** The slice kind the rule applies to (`speaker`, `gender`, ...); absent: the whole test split. */
  slice?: SliceKind;
  /** For change reasons: how significance was judged. */
  method?: ChangeMethod;
  /** Slices the rule did not gate: below their `min_size` (`S09 (4 clips < 20)`), or without the metric (`S03 (no f1.sad)`). */
  ungated?: string[];
}

/** A number as the gate prints it: integers plain, else up to four decimals. */
export function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(4).replace(/0+$/, '');
}

function ciText(i: Interval | undefined, confidence = 0.95): string {
  return i ? ` (${Math.round(confidence * 100)}% CI [${fmt(i.lo)}, ${fmt(i.hi)}])` : '';
}

/** The min / max bounds of a threshold on one value. */
export function valueReasons(
  t: Threshold,
  value: number,
  interval?: Interval,
  confidence?: number,
): GateReason[] {
  const reasons: GateReason[] = [];
  const shown = `${t.metric} ${fmt(value)}${ciText(interval, confidence)}`;
  if (t.min !== undefined) {
    const passed = value >= t.min;
    reasons.push({
      metric: t.metric,
      kind: 'value',
      passed,
      detail: `${shown} ${passed ? '>=' : '<'} min ${fmt(t.min)}`,
    });
  }
  if (t.max !== undefined) {
    const passed = value <= t.max;
    reasons.push({
      metric: t.metric,
      kind: 'value',
      passed,
      detail: `${shown} ${passed ? '<=' : '>'} max ${fmt(t.max)}`,
    });
  }
  return reasons;
}

/** The allowed change and its text: a relative tolerance is a fraction of |baseline|. */
function allowance(t: Threshold, base: number): { allowed: number; tolText: string } {
  const tol = t.tolerance ?? 0;
  const allowed = t.tolerance_kind === 'relative' ? tol * Math.abs(base) : tol;
  const tolText = t.tolerance_kind === 'relative' ? `${fmt(tol * 100)}% (${fmt(allowed)})` : fmt(allowed);
  return { allowed, tolText };
}

/**
 * The change check: a `higher` metric may drop by at most the tolerance below the baseline, a
 * `lower` metric may rise by at most the tolerance above it. With intervals, it fails only on a
 * significant regression beyond the tolerance (lib/slices/change.ts); without, on the point.
 */
export function changeReason(
  t: Threshold,
  evidence: ChangeEvidence,
  env: string,
  confidence: number | undefined,
): GateReason {
  const { allowed, tolText } = allowance(t, evidence.base);
  const rule = { direction: t.direction, allowed };
  const j = judgeChange(evidence, rule);
  const delta = evidence.value - evidence.base;
  const detail =
    j.method === 'point estimate'
      ? `${t.metric} ${fmt(evidence.value)} vs ${env} ${fmt(evidence.base)} (${delta >= 0 ? '+' : ''}${fmt(delta)}); ` +
        `${t.direction === 'higher' ? 'may drop' : 'may rise'} by at most ${tolText}`
      : describeChange(t.metric, j, { ...rule, tolText, against: env, confidence });
  return { metric: t.metric, kind: 'change', passed: j.passed, detail, method: j.method };
}

/** Paired-bootstrap intervals of the difference on a subset of the paired clips, memoised. */
export class PairedChanges {
  private readonly cache = new Map<string, Record<string, Interval>>();
  constructor(
    private readonly pairs: PairedPredictions,
    private readonly bootstrap: BootstrapOptions,
  ) {}

  /** Intervals and point differences for the clips of `kind` = `value` (both undefined: all clips). */
  of(kind?: string, value?: string): { intervals: Record<string, Interval>; delta: Record<string, number> } {
    const key = kind ? `${kind}:${value}` : 'overall';
    const members: number[] = [];
    this.pairs.slices.forEach((s, i) => {
      if (!kind || s[kind] === value) members.push(i);
    });
    const idx = Int32Array.from(members);
    const cand = createScorer(this.pairs.candidate, idx);
    const base = createScorer(this.pairs.baseline, idx);
    const ones = new Float64Array(idx.length).fill(1);
    const c = cand(ones);
    const b = base(ones);
    const delta = Object.fromEntries(Object.keys(c).map((m) => [m, c[m] - (b[m] ?? NaN)]));
    let intervals = this.cache.get(key);
    if (!intervals) {
      const speakers = members.map((i) => this.pairs.speakers[i]);
      intervals = pairedDifferenceIntervals(cand, base, speakers, this.bootstrap, key);
      this.cache.set(key, intervals);
    }
    return { intervals, delta };
  }
}

/**
 * True when the baseline's predictions reproduce the baseline's recorded headline metrics: only
 * then do they stand for the baseline (a lockfile edited by hand, or predictions of another
 * test set, fall back to interval overlap).
 */
export function predictionsMatch(pairs: PairedPredictions, base: EvalMetrics): boolean {
  const all = Int32Array.from(pairs.speakers, (_, i) => i);
  const scored = createScorer(pairs.baseline, all)(new Float64Array(all.length).fill(1));
  return ['accuracy', 'f1_macro'].every(
    (m) => typeof base.metrics[m] !== 'number' || Math.abs(scored[m] - base.metrics[m]) <= 1e-5,
  );
}

/** What the change check judges: both points, their intervals and the paired interval if any. */
export function evidenceFor(
  metric: string,
  value: number,
  base: number,
  interval: Interval | undefined,
  baseInterval: Interval | undefined,
  paired: { intervals: Record<string, Interval>; delta: Record<string, number> } | undefined,
): ChangeEvidence {
  const e: ChangeEvidence = { value, base };
  if (interval) e.interval = interval;
  if (baseInterval) e.baseInterval = baseInterval;
  const pi = paired?.intervals[metric];
  const pd = paired?.delta[metric];
  if (pi && pd !== undefined && Number.isFinite(pd)) {
    e.paired = pi;
    e.pairedDelta = pd;
  }
  return e;
}
