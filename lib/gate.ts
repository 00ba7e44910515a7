/**
 * The gate's decision, as a pure function (like the TFX Evaluator's blessing): value thresholds
 * on the candidate's metrics, and change thresholds against a baseline (the model deployed in an
 * environment). Deploy and promotion reuse it with their own thresholds.
 */
import type { z } from 'zod';
import { thresholdSchema } from './params-schema.ts';

/** One threshold from params.yaml `gate.thresholds` or `promotion/<env>.yaml`. */
export type Threshold = z.infer<typeof thresholdSchema>;
/** A threshold as written (defaults not yet applied). */
export type ThresholdInput = z.input<typeof thresholdSchema>;

export interface Baseline {
  /** Environment whose deployed model this is (omitted: "baseline"). */
  env?: string;
  /** Commit of the environment branch head whose lockfile gave the metrics. */
  commit?: string;
  metrics: Record<string, number>;
}

export interface GateReason {
  metric: string;
  kind: 'value' | 'change';
  passed: boolean;
  detail: string;
}

export interface GateVerdict {
  passed: boolean;
  baseline: Baseline | null;
  reasons: GateReason[];
}

export interface GateInput {
  metrics: Record<string, number>;
  thresholds: ThresholdInput[];
  /** The deployed model's metrics; null or undefined: value thresholds only. */
  baseline?: Baseline | null;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(4).replace(/0+$/, '');
}

function valueReasons(t: Threshold, value: number): GateReason[] {
  const reasons: GateReason[] = [];
  if (t.min !== undefined) {
    const passed = value >= t.min;
    reasons.push({
      metric: t.metric,
      kind: 'value',
      passed,
      detail: `${t.metric} ${fmt(value)} ${passed ? '>=' : '<'} min ${fmt(t.min)}`,
    });
  }
  if (t.max !== undefined) {
    const passed = value <= t.max;
    reasons.push({
      metric: t.metric,
      kind: 'value',
      passed,
      detail: `${t.metric} ${fmt(value)} ${passed ? '<=' : '>'} max ${fmt(t.max)}`,
    });
  }
  return reasons;
}

/**
 * The change check: a `higher` metric may drop by at most the tolerance below the baseline, a
 * `lower` metric may rise by at most the tolerance above it. A relative tolerance is a fraction
 * of |baseline|.
 */
function changeReason(t: Threshold, value: number, base: number, env: string): GateReason {
  const tol = t.tolerance ?? 0;
  const allowed = t.tolerance_kind === 'relative' ? tol * Math.abs(base) : tol;
  const bound = t.direction === 'higher' ? base - allowed : base + allowed;
  // A tiny epsilon keeps "exactly at the bound" from failing on float noise (0.8 - 0.02).
  const eps = 1e-9;
  const passed = t.direction === 'higher' ? value >= bound - eps : value <= bound + eps;
  const delta = value - base;
  const tolText = t.tolerance_kind === 'relative' ? `${fmt(tol * 100)}% (${fmt(allowed)})` : fmt(allowed);
  return {
    metric: t.metric,
    kind: 'change',
    passed,
    detail:
      `${t.metric} ${fmt(value)} vs ${env} ${fmt(base)} (${delta >= 0 ? '+' : ''}${fmt(delta)}); ` +
      `${t.direction === 'higher' ? 'may drop' : 'may rise'} by at most ${tolText}`,
  };
}

/** Evaluates every threshold; the gate passes when every reason passes. */
export function evaluateGate(input: GateInput): GateVerdict {
  const reasons: GateReason[] = [];
  for (const raw of input.thresholds) {
    const t = thresholdSchema.parse(raw);
    const value = input.metrics[t.metric];
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      reasons.push({
        metric: t.metric,
        kind: 'value',
        passed: false,
        detail: `${t.metric}: missing from the candidate's metrics`,
      });
      continue;
    }
    reasons.push(...valueReasons(t, value));
    const baseline = input.baseline ?? null;
    if (t.tolerance === undefined || baseline === null) continue;
    const base = baseline.metrics[t.metric];
    if (typeof base !== 'number' || !Number.isFinite(base)) {
      reasons.push({
        metric: t.metric,
        kind: 'change',
        passed: true,
        detail: `${t.metric}: baseline${baseline.env ? ` ${baseline.env}` : ''} has no value; change not checked`,
      });
      continue;
    }
    reasons.push(changeReason(t, value, base, baseline.env ?? 'baseline'));
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
