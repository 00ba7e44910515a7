import { describe, expect, it } from 'vitest';
import {
  classificationReport,
  confusionMatrix,
  matthewsCorrcoef,
  perClassScores,
  rocAuc,
  rocAucOvrMacro,
} from '../../lib/ml/metrics.ts';

describe('metrics', () => {
  it('confusionMatrix matches scikit-learn documented example', () => {
    // sklearn.metrics.confusion_matrix docstring.
    expect(confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3)).toEqual([
      [2, 0, 0],
      [0, 0, 1],
      [1, 0, 2],
    ]);
  });

  it('classificationReport matches scikit-learn documented f1/precision/recall/accuracy values', () => {
    // sklearn.metrics.f1_score / precision_score / recall_score docstrings.
    const r = classificationReport([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], ['a', 'b', 'c']);
    expect(r.metrics.f1_macro).toBeCloseTo(0.26666666666666666, 12);
    expect(r.metrics.precision_macro).toBeCloseTo(0.2222222222222222, 12);
    expect(r.metrics.recall_macro).toBeCloseTo(0.3333333333333333, 12);
    expect([r.metrics['f1.a'], r.metrics['f1.b'], r.metrics['f1.c']]).toEqual([0.8, 0, 0]);
    // sklearn.metrics.accuracy_score docstring: 0.5.
    expect(classificationReport([0, 1, 2, 3], [0, 2, 1, 3], ['w', 'x', 'y', 'z']).metrics.accuracy).toBe(0.5);
  });

  it('matthewsCorrcoef matches the scikit-learn binary example and a hand-computed multiclass case', () => {
    // matthews_corrcoef([+1,+1,+1,-1], [+1,-1,+1,+1]) = -0.333... (class 0 = -1, class 1 = +1).
    expect(matthewsCorrcoef(confusionMatrix([1, 1, 1, 0], [1, 0, 1, 1], 2))).toBeCloseTo(-1 / 3, 12);
    // C = [[1,1,0],[0,2,0],[1,0,1]]: (4·6 − 12) / sqrt((36 − 14)(36 − 12)) = 12 / sqrt(528).
    const m = confusionMatrix([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], 3);
    expect(matthewsCorrcoef(m)).toBeCloseTo(12 / Math.sqrt(528), 12);
  });

  it.each([
    { name: 'sklearn roc_auc_score docstring', pos: [0, 0, 1, 1], scores: [0.1, 0.4, 0.35, 0.8], auc: 0.75 },
    { name: 'perfect ranking', pos: [0, 0, 1, 1], scores: [0.1, 0.2, 0.3, 0.4], auc: 1 },
    { name: 'inverted ranking', pos: [1, 1, 0, 0], scores: [0.1, 0.2, 0.3, 0.4], auc: 0 },
    { name: 'all tied counts half', pos: [1, 0, 1, 0], scores: [0.5, 0.5, 0.5, 0.5], auc: 0.5 },
    { name: 'one tie across classes', pos: [0, 1, 0, 1], scores: [0.2, 0.2, 0.1, 0.9], auc: 0.875 },
  ])('rocAuc $name', ({ pos, scores, auc }) => {
    expect(rocAuc(pos.map(Boolean), scores)).toBeCloseTo(auc, 12);
  });

  it('rocAuc is NaN without negatives and rocAucOvrMacro skips such classes', () => {
    expect(rocAuc([true, true], [0.1, 0.2])).toBeNaN();
    // Class 2 never occurs: macro over classes 0 and 1 only (both perfectly ranked).
    const probs = [0.9, 0.1, 0, 0.2, 0.8, 0, 0.7, 0.3, 0];
    expect(rocAucOvrMacro([0, 1, 0], probs, 3)).toBe(1);
  });

  it.each([
    {
      name: 'perfect predictions',
      y: [0, 1, 2, 0],
      p: [0, 1, 2, 0],
      expect: { accuracy: 1, f1_macro: 1, mcc: 1 },
    },
    {
      name: 'always predicting one class',
      y: [0, 1, 0, 1],
      p: [0, 0, 0, 0],
      // class 0: P=2/4, R=1, F1=2/3; class 1: P=0 (no predictions), R=0, F1=0. MCC undefined → 0.
      expect: { accuracy: 0.5, f1_macro: 1 / 3, precision_macro: 0.25, recall_macro: 0.5, mcc: 0 },
    },
    {
      name: 'two of three right',
      y: [0, 1, 1],
      p: [0, 1, 0],
      // class 0: P=1/2, R=1, F1=2/3; class 1: P=1, R=1/2, F1=2/3.
      expect: { accuracy: 2 / 3, f1_macro: 2 / 3, precision_macro: 0.75, recall_macro: 0.75, mcc: 0.5 },
    },
  ])('classificationReport hand-computed case: $name', ({ y, p, expect: want }) => {
    const labels = ['x', 'y', 'z'].slice(0, Math.max(...y, ...p) + 1);
    const r = classificationReport(y, p, labels);
    for (const [k, v] of Object.entries(want)) expect(r.metrics[k], k).toBeCloseTo(v, 12);
  });

  it('classificationReport includes roc_auc_macro when probabilities are given', () => {
    const probs = [0.8, 0.2, 0.3, 0.7, 0.6, 0.4, 0.1, 0.9];
    const r = classificationReport([0, 1, 0, 1], [0, 1, 0, 1], ['a', 'b'], probs);
    expect(r.metrics.roc_auc_macro).toBe(1);
    expect(perClassScores(r.confusion.matrix).support).toEqual([2, 2]);
  });
});
