import { describe, expect, it } from 'vitest';
import {
  chiSquarePower,
  chiSquareRequestsNeeded,
  chiSquareTest,
  formatPValue,
  mannWhitneyRequestsNeeded,
  mannWhitneyU,
  proportionRequestsNeeded,
  twoProportionTest,
} from '../../lib/canary/stats.ts';

// Reference values computed with scipy 1.17.1 (the calls are in each comment).
describe('canary stats', () => {
  it('chiSquareTest matches scipy chi2_contingency without Yates correction', () => {
    // chi2_contingency([[30,10,5,5],[60,70,40,30]], correction=False)
    //   -> statistic 15.749007936507935, pvalue 0.0012765658372639493, dof 3
    const r = chiSquareTest({ a: 30, b: 10, c: 5, d: 5 }, { a: 60, b: 70, c: 40, d: 30 });
    expect(r.statistic).toBeCloseTo(15.749007936507935, 10);
    expect(r.pValue).toBeCloseTo(0.0012765658372639493, 10);
    expect(r.df).toBe(3);
    // A label neither side predicted is not a column; one label alone is nothing to test.
    expect(chiSquareTest({ a: 3, z: 0 }, { a: 4 })).toEqual({ statistic: 0, df: 0, pValue: 1 });
  });

  it('twoProportionTest is the pooled one-sided z test', () => {
    // p = 10/250; z = (6/50 - 4/200) / sqrt(p(1-p)(1/50 + 1/200)); norm.sf(z)
    //   -> z 3.227486121839514, p 0.0006244154940442126
    const r = twoProportionTest(6, 50, 4, 200);
    expect(r.statistic).toBeCloseTo(3.227486121839514, 10);
    expect(r.pValue).toBeCloseTo(0.0006244154940442126, 10);
    expect(twoProportionTest(0, 30, 0, 90)).toEqual({ statistic: 0, pValue: 1 });
  });

  it.each([
    // mannwhitneyu(c, s, alternative='greater', method='asymptotic'): ties in both samples
    [[3, 5, 5, 7, 9, 9, 9, 12, 15, 20], [1, 2, 3, 3, 5, 6, 7, 7, 8, 9, 10, 11], 83.5, 0.06349453664027174],
    // no ties
    [
      [12.1, 14.3, 15.0, 18.2, 19.9, 22.4, 25.0, 30.1],
      [10.0, 11.2, 12.5, 13.1, 13.9, 14.8, 15.5, 16.0, 17.3],
      58,
      0.0192806237987123,
    ],
  ])('mannWhitneyU %j vs %j matches scipy (tie and continuity corrected)', (c, s, u, p) => {
    const r = mannWhitneyU(c, s);
    expect(r.statistic).toBe(u);
    expect(r.pValue).toBeCloseTo(p, 10);
    expect(r.auc).toBeCloseTo(u / (c.length * s.length), 12);
    // Swapping the samples asks the opposite question.
    expect(mannWhitneyU(s, c).pValue).toBeGreaterThan(0.9);
  });

  it('chiSquarePower is within 0.5% of the noncentral chi-square from 3 degrees of freedom', () => {
    // ncx2.sf(chi2.ppf(0.99, df), df, lam) = 0.8 at lam 15.4577 (df 3) and 18.8719 (df 6)
    expect(chiSquarePower(15.457657199101343, 3, 0.01)).toBeCloseTo(0.8, 2);
    expect(chiSquarePower(18.871851775188805, 6, 0.01)).toBeCloseTo(0.8, 2);
    // ncx2.sf(chi2.ppf(0.99, 3), 3, 15) = 0.78382
    expect(chiSquarePower(15, 3, 0.01)).toBeCloseTo(0.7838, 2);
  });

  it('request counts for power match the textbook formulas', () => {
    // df 1 is the two-sided z test: n = (1.95996 + 0.84162)² · 0.25 · 2 / 0.1² = 392.44 per side
    expect(chiSquareRequestsNeeded(0.1, 1, 0.05, 0.8, 1)).toBe(393);
    // df 6, α 0.01: brentq on ncx2 gives λ 18.8719; n = λ · 10 / (4 · 0.01 · 9) = 524.2
    expect(chiSquareRequestsNeeded(0.1, 6, 0.01, 0.8, 9)).toBeGreaterThanOrEqual(522);
    expect(chiSquareRequestsNeeded(0.1, 6, 0.01, 0.8, 9)).toBeLessThanOrEqual(526);
    // Fleiss, one-sided α 0.05, 0.05 → 0.10, equal groups:
    // (1.64485·√(2·0.075·0.925) + 0.84162·√(0.1·0.9 + 0.05·0.95))² / 0.05² = 342.2
    expect(proportionRequestsNeeded(0.05, 0.05, 0.05, 0.8, 1)).toBe(343);
    // Noether, one-sided α 0.05, P(slower) 0.6, equal groups: (1.64485 + 0.84162)² / (12·0.25·0.01) = 206.1 in all
    expect(mannWhitneyRequestsNeeded(0.6, 0.05, 0.8, 1)).toBe(104);
    // A 10% canary (k = 9): N = 6.183 / (12·0.09·0.01) = 572.5 in all, 57.2 of them canary's.
    expect(mannWhitneyRequestsNeeded(0.6, 0.05, 0.8, 9)).toBe(58);
  });

  it.each([
    [0.0312, '0.031'],
    [0.0004, '0.0004'],
    [2.1e-7, '2.1e-7'],
  ])('formatPValue(%s) is %s', (p, text) => expect(formatPValue(p)).toBe(text));
});
