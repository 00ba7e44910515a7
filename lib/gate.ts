/**
 * The gate's decision, as a pure function (like the TFX Evaluator's blessing): value thresholds
 * on the candidate's metrics, and change thresholds against a baseline (the model deployed in an
 * environment). Deploy and promotion reuse it with their own thresholds.
 */
import type { z } from 'zod';
import { thresholdSchema, type SliceKind } from './params-schema.ts';
import { describeChange, judgeChange, type ChangeEvidence, type ChangeMethod } from './slices/change.ts';
import { isGatedSlice, readEvalMetrics, type EvalMetrics, type Interval } from './slices/shape.ts';
import { pairedDifferenceIntervals, type BootstrapOptions } from './slices/bootstrap.ts';
import { createScorer } from './slices/scorer.ts';
import { pairPredictions, type PairedPredictions, type PredictionsFile } from './slices/predictions.ts';

/** One threshold from params.yaml `gate.thresholds` or `promotion/<env>.yaml`. */
export type Threshold = z.infer<typeof thresholdSchema>;
/** A threshold as written (defaults not yet applied). */
export type ThresholdInput = z.input<typeof thresholdSchema>;

export interface Baseline {
  /** Environment whose deployed model this is (omitted: "baseline"). */
  env?: string;
  /** Commit of the environment branch head whose lockfile gave the metrics. */
  commit?: string;
  /** Flat metrics (the lockfile's form: `f1_macro`, `intervals.f1_macro.lo`, `slices.speaker.S03.n`, ...). */
  metrics: Record<string, number>;
}

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

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(4).replace(/0+$/, '');
}

function ciText(i: Interval | undefined, confidence = 0.95): string {
  return i ? ` (${Math.round(confidence * 100)}% CI [${fmt(i.lo)}, ${fmt(i.hi)}])` : '';
}

function valueReasons(t: Threshold, value: number, interval?: Interval, confidence?: number): GateReason[] {
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
function changeReason(
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
class PairedChanges {
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
function predictionsMatch(pairs: PairedPredictions, base: EvalMetrics): boolean {
  const all = Int32Array.from(pairs.speakers, (_, i) => i);
  const scored = createScorer(pairs.baseline, all)(new Float64Array(all.length).fill(1));
  return ['accuracy', 'f1_macro'].every(
    (m) => typeof base.metrics[m] !== 'number' || Math.abs(scored[m] - base.metrics[m]) <= 1e-5,
  );
}

function evidenceFor(
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

// Declared by default, the gender slices are still empty when no demographics file or naming
// convention gives the test speakers a gender: say how to give them one.
const GENDER_HINT =
  ', and give the test speakers a gender (a speakers.csv with speaker,gender columns in the data folder)';

const better = (t: Threshold, a: number, b: number): boolean => (t.direction === 'higher' ? a > b : a < b);

/** The rules of a threshold with `slice`: min / max over slices, the best-vs-worst gap, per-slice change. */
function sliceReasons(
  t: Threshold,
  kind: SliceKind,
  cand: EvalMetrics,
  base: EvalMetrics | null,
  env: string,
  paired: PairedChanges | null,
): GateReason[] {
  const all = cand.slices[kind];
  const label = `${t.metric} by ${kind}`;
  if (!all || Object.keys(all).length === 0) {
    return [
      {
        metric: t.metric,
        kind: 'value',
        slice: kind,
        passed: false,
        detail: `${label}: no ${kind} slices in the candidate's metrics. Declare { kind: ${kind} } in params.yaml evaluate.slices${kind === 'gender' ? GENDER_HINT : ''}.`,
      },
    ];
  }
  const known = (m: unknown): m is number => typeof m === 'number' && Number.isFinite(m);
  // A metric no slice and no headline has is a typo (`f1_macr`), not a rule that passes.
  if (!known(cand.metrics[t.metric]) && !Object.values(all).some((s) => known(s.metrics[t.metric]))) {
    return [
      {
        metric: t.metric,
        kind: 'value',
        slice: kind,
        passed: false,
        detail: `${label}: missing from the candidate's metrics. Name an evaluate metric (f1_macro, accuracy, f1.<label>, ...).`,
      },
    ];
  }
  const gated: [string, number][] = [];
  const ungated: string[] = [];
  const undefinedIn: string[] = [];
  for (const [value, s] of Object.entries(all)) {
    const m = s.metrics[t.metric];
    if (!isGatedSlice(s)) ungated.push(`${value} (${s.n} clips < ${s.min_size})`);
    else if (known(m)) gated.push([value, m]);
    else undefinedIn.push(value);
  }
  const extra =
    ungated.length || undefinedIn.length
      ? { ungated: [...ungated, ...undefinedIn.map((v) => `${v} (no ${t.metric})`)] }
      : {};
  // A per-class metric is undefined in a slice without that class: said, not gated.
  const notGated =
    (ungated.length ? `; not gated (below min_size): ${ungated.join(', ')}` : '') +
    (undefinedIn.length ? `; not gated (no ${t.metric} there): ${undefinedIn.join(', ')}` : '');
  if (gated.length === 0) {
    return [
      {
        metric: t.metric,
        kind: 'value',
        slice: kind,
        passed: true,
        detail: `${label}: no slice large enough to gate${notGated}`,
        ...extra,
      },
    ];
  }
  // Worst first, so reasons name the slices that matter.
  gated.sort(([, a], [, b]) => (better(t, a, b) ? 1 : better(t, b, a) ? -1 : 0));
  const [worstName, worst] = gated[0];
  const [bestName, best] = gated[gated.length - 1];
  const reasons: GateReason[] = [];
  const bound = (op: 'min' | 'max', limit: number): void => {
    const failing = gated.filter(([, v]) => (op === 'min' ? v < limit : v > limit));
    const passed = failing.length === 0;
    reasons.push({
      metric: t.metric,
      kind: 'value',
      slice: kind,
      passed,
      detail: passed
        ? `${label}: worst ${worstName} ${fmt(worst)} ${op === 'min' ? '>=' : '<='} ${op} ${fmt(limit)} (${gated.length} slices)${notGated}`
        : `${label}: ${failing.map(([n, v]) => `${n} ${fmt(v)}`).join(', ')} ${op === 'min' ? '<' : '>'} ${op} ${fmt(limit)}${notGated}`,
      ...extra,
    });
  };
  if (t.min !== undefined) bound('min', t.min);
  if (t.max !== undefined) bound('max', t.max);
  if (t.max_gap !== undefined) {
    const gap = Math.abs(best - worst);
    const passed = gap <= t.max_gap + 1e-9;
    reasons.push({
      metric: t.metric,
      kind: 'gap',
      slice: kind,
      passed,
      detail: `${label}: gap ${fmt(gap)} between best ${bestName} ${fmt(best)} and worst ${worstName} ${fmt(worst)} ${passed ? '<=' : '>'} max_gap ${fmt(t.max_gap)}${notGated}`,
      ...extra,
    });
  }
  if (t.tolerance !== undefined && base) {
    const baseSlices = base.slices[kind] ?? {};
    const judged: { name: string; reason: GateReason }[] = [];
    const missing: string[] = [];
    for (const [name, value] of gated) {
      const b = baseSlices[name]?.metrics[t.metric];
      if (typeof b !== 'number' || !Number.isFinite(b)) {
        missing.push(name);
        continue;
      }
      const evidence = evidenceFor(
        t.metric,
        value,
        b,
        all[name].intervals[t.metric],
        baseSlices[name].intervals[t.metric],
        paired?.of(kind, name),
      );
      const r = changeReason(
        { ...t, metric: `${t.metric} [${kind} ${name}]` },
        evidence,
        env,
        cand.confidence,
      );
      judged.push({ name, reason: r });
    }
    const failing = judged.filter((j) => !j.reason.passed);
    const methods = [...new Set(judged.map((j) => j.reason.method))];
    const none = missing.length ? `; baseline has no ${missing.join(', ')}: not compared` : '';
    reasons.push({
      metric: t.metric,
      kind: 'change',
      slice: kind,
      passed: failing.length === 0,
      detail:
        judged.length === 0
          ? `${label}: baseline ${env} has no matching ${kind} slices; change not checked${notGated}`
          : failing.length
            ? `${label}: ${failing.map((f) => f.reason.detail).join('; ')}${none}${notGated}`
            : `${label}: no slice regresses significantly (${judged.length} compared)${none}${notGated}`,
      ...(methods.length === 1 && methods[0] ? { method: methods[0] } : {}),
      ...extra,
    });
  }
  return reasons;
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
