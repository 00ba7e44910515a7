/**
 * A change threshold judged on an interval, not on a point estimate: the candidate fails only
 * when the whole interval of the change lies beyond the tolerance (it is significantly worse by
 * more than the allowed regression). The interval comes from, best first:
 *
 * 1. `paired bootstrap`: both models' predictions on the same clips, resampled together;
 * 2. `interval overlap`: the candidate's and the baseline's own intervals (the change lies in
 *    [cand.lo - base.hi, cand.hi - base.lo]; failing means the candidate's upper bound is below
 *    the baseline's lower bound minus the tolerance; conservative, as non-overlap is);
 * 3. `candidate interval`: the baseline has no interval (an older lockfile), its point is used;
 * 4. `point estimate`: no interval at all; the plain comparison of the two values.
 */
import type { Interval } from './shape.ts';

export type ChangeMethod = 'paired bootstrap' | 'interval overlap' | 'candidate interval' | 'point estimate';

export interface ChangeEvidence {
  value: number;
  base: number;
  /** Interval of the candidate's metric. */
  interval?: Interval;
  /** Interval of the baseline's metric. */
  baseInterval?: Interval;
  /** Paired-bootstrap interval of candidate − baseline. */
  paired?: Interval;
  /** Point difference from the paired predictions (equals value − base on the same clips). */
  pairedDelta?: number;
}

export interface ChangeRule {
  direction: 'higher' | 'lower';
  /** Allowed regression in the metric's units (relative tolerances already applied). */
  allowed: number;
}

export interface ChangeJudgement {
  passed: boolean;
  method: ChangeMethod;
  delta: number;
  /** Interval of the change (absent for `point estimate`). */
  change?: Interval;
  significant: boolean;
}

const EPS = 1e-9;

/** Judges one change. */
export function judgeChange(e: ChangeEvidence, rule: ChangeRule): ChangeJudgement {
  let method: ChangeMethod;
  let change: Interval | undefined;
  let delta = e.value - e.base;
  if (e.paired) {
    method = 'paired bootstrap';
    change = e.paired;
    if (e.pairedDelta !== undefined) delta = e.pairedDelta;
  } else if (e.interval && e.baseInterval) {
    method = 'interval overlap';
    change = { lo: e.interval.lo - e.baseInterval.hi, hi: e.interval.hi - e.baseInterval.lo };
  } else if (e.interval) {
    method = 'candidate interval';
    change = { lo: e.interval.lo - e.base, hi: e.interval.hi - e.base };
  } else {
    method = 'point estimate';
  }
  // The regression beyond tolerance is significant when even the best end of the interval is
  // worse than the allowed drop (or rise, for a `lower` metric).
  const best = change ? (rule.direction === 'higher' ? change.hi : change.lo) : delta;
  const significant = rule.direction === 'higher' ? best < -rule.allowed - EPS : best > rule.allowed + EPS;
  return { passed: !significant, method, delta, ...(change ? { change } : {}), significant };
}

function signed(x: number): string {
  const s = Number.isInteger(x) ? String(x) : x.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
  return x > 0 ? `+${s}` : x < 0 ? s.replace('-', '−') : s;
}

/**
 * The judgement in words: `f1_macro −0.03, 95% CI [−0.09, +0.02] vs prod (paired bootstrap):
 * not a significant regression beyond 0.02`.
 */
export function describeChange(
  label: string,
  j: ChangeJudgement,
  rule: ChangeRule & { tolText: string; against: string; confidence?: number },
): string {
  const level = `${Math.round((rule.confidence ?? 0.95) * 100)}% CI`;
  const ci = j.change ? `, ${level} [${signed(j.change.lo)}, ${signed(j.change.hi)}]` : '';
  const worse = rule.direction === 'higher' ? 'regression' : 'rise';
  const verdict = j.significant
    ? `significant ${worse} beyond ${rule.tolText}`
    : `not a significant ${worse} beyond ${rule.tolText}`;
  return `${label} ${signed(j.delta)}${ci} vs ${rule.against} (${j.method}): ${verdict}`;
}
