import { describe, expect, it } from 'vitest';
import { classificationReport } from '../../lib/ml/metrics.ts';
import { bootstrapIntervals, clusterBy, resampleWeights } from '../../lib/slices/bootstrap.ts';
import { computeSlices, durationBin, overallIntervals } from '../../lib/slices/compute.ts';
import { createScorer } from '../../lib/slices/scorer.ts';
import { createRng } from '../../lib/rng.ts';
import { syntheticSet } from './synthetic.ts';

const OPTIONS = { resamples: 300, confidence: 0.95, seed: 3 };
const SPEAKERS: Record<string, [number, number]> = { S1m: [30, 0.9], S2f: [30, 0.5], S3m: [30, 0.75] };

describe('slices bootstrap', () => {
  it('scorer with unit weights gives exactly the metrics of classificationReport', () => {
    const s = syntheticSet(SPEAKERS, 1);
    const all = Int32Array.from(s.clips, (_, i) => i);
    const scored = createScorer(s.predictions, all)(new Float64Array(all.length).fill(1));
    const report = classificationReport(
      s.predictions.yTrue,
      s.predictions.yPred,
      s.predictions.labels,
      s.predictions.probs,
    );
    expect(Object.keys(scored).sort()).toEqual(Object.keys(report.metrics).sort());
    for (const [key, v] of Object.entries(report.metrics)) expect(scored[key], key).toBeCloseTo(v, 12);
  });

  it('scorer with integer weights equals the report of the clips repeated that often', () => {
    const s = syntheticSet(SPEAKERS, 2);
    const all = Int32Array.from(s.clips, (_, i) => i);
    const w = resampleWeights(clusterBy(s.clips.map((c) => c.speaker)), all.length, createRng(9));
    const rep = (xs: ArrayLike<number>, k = 1) =>
      Array.from(w).flatMap((count, i) =>
        Array.from({ length: count * k }, (_, j) => (xs as number[])[i * k + (j % k)]),
      );
    const k = s.predictions.labels.length;
    const probs = Array.from(w).flatMap((count, i) =>
      Array.from({ length: count }, () => Array.from(s.predictions.probs!).slice(i * k, i * k + k)).flat(),
    );
    const report = classificationReport(
      rep(s.predictions.yTrue),
      rep(s.predictions.yPred),
      s.predictions.labels,
      probs,
    );
    const scored = createScorer(s.predictions, all)(w);
    for (const [key, v] of Object.entries(report.metrics)) expect(scored[key], key).toBeCloseTo(v, 10);
  });

  it('bootstrap intervals are reproducible with the same seed and differ with another', () => {
    const s = syntheticSet(SPEAKERS, 1);
    const a = overallIntervals(s.predictions, s.clips, OPTIONS);
    const b = overallIntervals(s.predictions, s.clips, OPTIONS);
    const c = overallIntervals(s.predictions, s.clips, { ...OPTIONS, seed: 4 });
    expect(a).toEqual(b);
    expect(a.f1_macro).not.toEqual(c.f1_macro);
    const point = classificationReport(
      s.predictions.yTrue,
      s.predictions.yPred,
      s.predictions.labels,
    ).metrics;
    for (const key of ['accuracy', 'f1_macro', 'mcc']) {
      expect(a[key].lo).toBeLessThanOrEqual(point[key]);
      expect(a[key].hi).toBeGreaterThanOrEqual(point[key]);
    }
  });

  it('bootstrap clustered by speaker is wider than over clips when speakers differ', () => {
    const s = syntheticSet({ A: [40, 0.95], B: [40, 0.4], C: [40, 0.9], D: [40, 0.45] }, 5);
    const all = Int32Array.from(s.clips, (_, i) => i);
    const score = createScorer(s.predictions, all);
    const clustered = bootstrapIntervals(
      score,
      s.clips.map((c) => c.speaker),
      OPTIONS,
      'x',
    ).accuracy;
    // Every clip its own cluster: the plain clip bootstrap.
    const plain = bootstrapIntervals(
      score,
      s.clips.map((c) => c.path),
      OPTIONS,
      'x',
    ).accuracy;
    expect(clustered.hi - clustered.lo).toBeGreaterThan(1.5 * (plain.hi - plain.lo));
  });

  it('computeSlices groups clips per declared kind, sorted, with sizes, min_size and intervals', () => {
    const s = syntheticSet({ ...SPEAKERS, S4f: [3, 0.5] }, 1);
    const slices = computeSlices(
      s.predictions,
      s.clips,
      [
        { kind: 'speaker', min_size: 10 },
        { kind: 'gender', min_size: 10 },
        { kind: 'duration', min_size: 10, bins: [1.5, 2.5] },
      ],
      OPTIONS,
    );
    expect(Object.keys(slices.speaker!)).toEqual(['S1m', 'S2f', 'S3m', 'S4f']);
    expect(slices.speaker!.S4f).toMatchObject({ n: 3, speakers: 1, min_size: 10 });
    expect(slices.gender!.female).toMatchObject({ n: 33, speakers: 2 });
    expect(Object.keys(slices.duration!).sort()).toEqual(['1.5-2.5s', '<1.5s', '>=2.5s']);
    expect(slices.speaker!.S1m.metrics.accuracy).toBeGreaterThan(slices.speaker!.S2f.metrics.accuracy);
    expect(slices.speaker!.S1m.intervals.accuracy.hi).toBeGreaterThanOrEqual(
      slices.speaker!.S1m.metrics.accuracy,
    );
  });

  it.each([
    [0.4, '<1.5s'],
    [1.5, '1.5-2.5s'],
    [2.49, '1.5-2.5s'],
    [2.5, '>=2.5s'],
  ])('durationBin %s s is %s', (seconds, bin) => {
    expect(durationBin(seconds, [1.5, 2.5])).toBe(bin);
  });
});
