/**
 * The gate rules of a threshold with `slice`: min / max over the gated slices, the best-vs-worst
 * gap, and the per-slice change against the baseline. Slices below their `min_size` or without
 * the metric are named, not gated.
 */
import type { SliceKind } from './params-schema.ts';
import { isGatedSlice, type EvalMetrics } from './slices/shape.ts';
import {
  changeReason,
  evidenceFor,
  fmt,
  type GateReason,
  type PairedChanges,
  type Threshold,
} from './gate-rules.ts';

// Declared by default, the gender slices are still empty when no demographics file or naming
// convention gives the test speakers a gender: say how to give them one.
const GENDER_HINT =
  ', and give the test speakers a gender (a speakers.csv with speaker,gender columns in the data folder)';

const better = (t: Threshold, a: number, b: number): boolean => (t.direction === 'higher' ? a > b : a < b);

/** The rules of a threshold with `slice`: min / max over slices, the best-vs-worst gap, per-slice change. */
export function sliceReasons(
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
