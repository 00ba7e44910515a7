import { describe, expect, it } from 'vitest';
import { evaluateGate } from '../../lib/gate.ts';
import type { ThresholdInput } from '../../lib/gate-rules.ts';
import { classificationReport } from '../../lib/ml/metrics.ts';
import { flattenMetrics } from '../../lib/pipeline/metrics.ts';
import { computeSlices, overallIntervals } from '../../lib/slices/compute.ts';
import { asPredictionsFile, syntheticSet, type SyntheticSet } from './synthetic.ts';

const BOOT = { resamples: 300, confidence: 0.95, seed: 0 };
const SPECS = [
  { kind: 'speaker' as const, min_size: 20 },
  { kind: 'gender' as const, min_size: 20 },
];

/** The flat metrics evaluate would record for a set (headline, intervals, slices). */
function flatMetrics(s: SyntheticSet): Record<string, number> {
  const p = s.predictions;
  return flattenMetrics({
    ...classificationReport(p.yTrue, p.yPred, p.labels, p.probs).metrics,
    intervals: overallIntervals(p, s.clips, BOOT),
    bootstrap: BOOT,
    slices: computeSlices(p, s.clips, SPECS, BOOT),
  });
}

const GOOD: Record<string, [number, number]> = {
  A01m: [40, 0.85],
  A02f: [40, 0.85],
  A03m: [40, 0.85],
  A04f: [40, 0.85],
};

describe('gate slice rules', () => {
  it('a candidate fine globally but breaking one speaker fails the slice rule naming that speaker', () => {
    const baseline = syntheticSet(GOOD, 1);
    // Same clips (same seed stream for the truth is not needed: pairing is by path and true label).
    const candidate = syntheticSet({ ...GOOD, A03m: [40, 0.2] }, 1);
    const thresholds: ThresholdInput[] = [
      { metric: 'accuracy', min: 0.5 },
      { metric: 'accuracy', slice: 'speaker', min: 0.5, max_gap: 0.4 },
    ];
    const v = evaluateGate({ metrics: flatMetrics(candidate), thresholds });
    expect(v.passed).toBe(false);
    const [global, min, gap] = v.reasons;
    expect(global.passed).toBe(true);
    expect(min).toMatchObject({ passed: false, slice: 'speaker', kind: 'value' });
    expect(min.detail).toMatch(/^accuracy by speaker: A03m 0\.\d+ < min 0\.5$/);
    expect(gap).toMatchObject({ passed: false, kind: 'gap' });
    expect(gap.detail).toContain('worst A03m');
    // The baseline (every speaker fine) passes the same rules.
    expect(evaluateGate({ metrics: flatMetrics(baseline), thresholds }).passed).toBe(true);
  });

  it('a speaker regressing against the baseline fails on the paired bootstrap, naming it', () => {
    const baseline = syntheticSet(GOOD, 1);
    const candidate = syntheticSet({ ...GOOD, A03m: [40, 0.35] }, 1);
    const v = evaluateGate({
      metrics: flatMetrics(candidate),
      thresholds: [{ metric: 'f1_macro', slice: 'speaker', tolerance: 0.05 }],
      baseline: { env: 'prod', commit: 'c0ffee', metrics: flatMetrics(baseline) },
      paired: {
        candidate: asPredictionsFile(candidate),
        baseline: asPredictionsFile(baseline),
        bootstrap: BOOT,
      },
    });
    expect(v.passed).toBe(false);
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0]).toMatchObject({ slice: 'speaker', kind: 'change', method: 'paired bootstrap' });
    expect(v.reasons[0].detail).toMatch(
      /^f1_macro by speaker: f1_macro \[speaker A03m\] −0\.\d+, 95% CI \[−0\.\d+, −0\.\d+\] vs prod \(paired bootstrap\): significant regression beyond 0\.05$/,
    );
  });

  it('a tiny slice is reported but not gated', () => {
    const candidate = syntheticSet({ ...GOOD, A05f: [5, 0] }, 2);
    const v = evaluateGate({
      metrics: flatMetrics(candidate),
      thresholds: [{ metric: 'accuracy', slice: 'speaker', min: 0.5, max_gap: 0.4 }],
    });
    expect(v.passed).toBe(true);
    for (const r of v.reasons) {
      expect(r.ungated).toEqual(['A05f (5 clips < 20)']);
      expect(r.detail).toContain('not gated (below min_size): A05f (5 clips < 20)');
    }
    // Gated at a lower min_size, the same slice fails the rule.
    const low = flattenMetrics({
      slices: computeSlices(candidate.predictions, candidate.clips, [{ kind: 'speaker', min_size: 5 }], BOOT),
    });
    const failed = evaluateGate({
      metrics: low,
      thresholds: [{ metric: 'accuracy', slice: 'speaker', min: 0.5 }],
    });
    expect(failed.reasons[0]).toMatchObject({ passed: false });
    expect(failed.reasons[0].detail).toContain('A05f 0 < min 0.5');
  });

  it('a slice rule on a metric nobody computes (a typo) fails instead of passing', () => {
    const v = evaluateGate({
      metrics: flatMetrics(syntheticSet(GOOD, 1)),
      thresholds: [{ metric: 'f1_macr', slice: 'speaker', min: 0.5, max_gap: 0.1 }],
    });
    expect(v.passed).toBe(false);
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0].detail).toBe(
      "f1_macr by speaker: missing from the candidate's metrics. Name an evaluate metric (f1_macro, accuracy, f1.<label>, ...).",
    );
  });

  it('a per-class slice rule skips, and says so, a speaker who never recorded that class', () => {
    // S1 recorded only angry clips; S2 both classes; every answer is right.
    const clips = [
      ...Array.from({ length: 20 }, (_, i) => ({ path: `S1/${i}.wav`, speaker: 'S1' })),
      ...Array.from({ length: 20 }, (_, i) => ({ path: `S2/${i}.wav`, speaker: 'S2' })),
    ];
    const yTrue = Int32Array.from(clips, (c, i) => (c.speaker === 'S2' && i % 2 ? 1 : 0));
    const p = { labels: ['angry', 'sad'], yTrue, yPred: yTrue };
    const metrics = flattenMetrics({
      ...classificationReport(p.yTrue, p.yPred, p.labels).metrics,
      intervals: overallIntervals(p, clips, BOOT),
      bootstrap: BOOT,
      slices: computeSlices(p, clips, [{ kind: 'speaker', min_size: 20 }], BOOT),
    });
    expect(metrics['slices.speaker.S1.metrics.f1.sad']).toBeUndefined();
    // Resamples that drew S1 only have no sad clip: they leave f1.sad out rather than count 0.
    expect(metrics['intervals.f1.sad.lo']).toBe(1);
    const v = evaluateGate({ metrics, thresholds: [{ metric: 'f1.sad', slice: 'speaker', min: 0.9 }] });
    expect(v.passed).toBe(true);
    expect(v.reasons[0].detail).toContain('not gated (no f1.sad there): S1');
    expect(v.reasons[0].ungated).toEqual(['S1 (no f1.sad)']);
  });

  it('a gender rule on speakers nothing gives a gender says how to give them one', () => {
    const s = syntheticSet(GOOD, 1);
    const clips = s.clips.map(({ gender: _, ...c }) => c);
    const metrics = flattenMetrics({ slices: computeSlices(s.predictions, clips, SPECS, BOOT) });
    const v = evaluateGate({ metrics, thresholds: [{ metric: 'accuracy', slice: 'gender', min: 0.5 }] });
    expect(v.reasons[0].passed).toBe(false);
    expect(v.reasons[0].detail).toBe(
      "accuracy by gender: no gender slices in the candidate's metrics. Declare { kind: gender } in params.yaml evaluate.slices, and give the test speakers a gender (a speakers.csv with speaker,gender columns in the data folder).",
    );
  });

  it('a rule naming a slice kind evaluate did not compute fails and says how to declare it', () => {
    const v = evaluateGate({
      metrics: flatMetrics(syntheticSet(GOOD, 1)),
      thresholds: [{ metric: 'accuracy', slice: 'format', min: 0.5 }],
    });
    expect(v.reasons[0].passed).toBe(false);
    expect(v.reasons[0].detail).toBe(
      "accuracy by format: no format slices in the candidate's metrics. Declare { kind: format } in params.yaml evaluate.slices.",
    );
  });

  it('another data seed does not flip a verdict the interval calls not significant', () => {
    // The same model quality as the baseline, evaluated on test sets drawn with other seeds: 70
    // clips from two speakers, as the demo corpus' test split.
    const two: Record<string, [number, number]> = { S03m: [35, 0.8], S08f: [35, 0.8] };
    const baseline = { env: 'prod', metrics: flatMetrics(syntheticSet(two, 100)) };
    const threshold: ThresholdInput = { metric: 'f1_macro', tolerance: 0.02 };
    const byInterval: boolean[] = [];
    const byPoint: boolean[] = [];
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const metrics = flatMetrics(syntheticSet(two, seed));
      const v = evaluateGate({ metrics, thresholds: [threshold], baseline });
      expect(v.reasons[0].method).toBe('interval overlap');
      expect(v.reasons[0].detail).toMatch(/\(interval overlap\): not a significant regression beyond 0\.02$/);
      byInterval.push(v.passed);
      // The same check on point estimates alone (no intervals): the verdict moves with the seed.
      const points = Object.fromEntries(Object.entries(metrics).filter(([k]) => !k.includes('.')));
      const basePoints = Object.fromEntries(
        Object.entries(baseline.metrics).filter(([k]) => !k.includes('.')),
      );
      byPoint.push(
        evaluateGate({
          metrics: points,
          thresholds: [threshold],
          baseline: { env: 'prod', metrics: basePoints },
        }).passed,
      );
    }
    expect(byInterval.every(Boolean)).toBe(true);
    expect(byPoint, JSON.stringify(byPoint)).toContain(true);
    expect(byPoint, JSON.stringify(byPoint)).toContain(false);
  });

  it('a significant global regression fails on the interval with its evidence', () => {
    const baseline = syntheticSet(GOOD, 1);
    const worse = Object.fromEntries(Object.keys(GOOD).map((s) => [s, [40, 0.45] as [number, number]]));
    const candidate = syntheticSet(worse, 1);
    const v = evaluateGate({
      metrics: flatMetrics(candidate),
      thresholds: [{ metric: 'f1_macro', tolerance: 0.02 }],
      baseline: { env: 'prod', metrics: flatMetrics(baseline) },
    });
    expect(v.passed).toBe(false);
    expect(v.reasons[0].detail).toMatch(
      /^f1_macro −0\.\d+, 95% CI \[−0\.\d+, −0\.\d+\] vs prod \(interval overlap\): significant regression beyond 0\.02$/,
    );
  });
});
