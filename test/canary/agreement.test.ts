import { describe, expect, it } from 'vitest';
import { pairedEvidence, unpairedRequestsNeeded } from '../../lib/canary/agreement.ts';
import { analyzeStep } from '../../lib/canary/analysis.ts';
import type { PredictionLogEntry } from '../../lib/serving/logs.ts';

const T = { min_agreement: 0.7, max_score_shift: 0.2, alpha: 0.01 };
const LABELS = ['a', 'b', 'c', 'd'];
const onehot = (l: string) => Object.fromEntries(LABELS.map((x) => [x, x === l ? 1 : 0]));

/** `n` canary answers to inputs 0..n-1, of which the first `agree` match stable's shadow answer. */
function paired(n: number, agree: number): PredictionLogEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const stable = LABELS[i % 4];
    const label = i < agree ? stable : LABELS[(i + 1) % 4];
    return {
      time: '',
      env: 'e',
      deployedModelId: '2',
      status: 'ok' as const,
      label,
      scores: onehot(label),
      summary: [i],
      latencyMs: 1,
      shadow: { deployedModelId: '1', modelVersionId: 'x', label: stable, scores: onehot(stable) },
    };
  });
}

describe('canary agreement', () => {
  // Exact binomial P(X <= k | n, 0.7).
  const cases: [number, number, number, boolean][] = [
    [30, 12, 0.0002, true], // 40%: a 1-epoch model
    [30, 19, 0.2696, false], // 63%: not significantly below 70%
    [30, 27, 0.9979, false],
    [10, 0, 5.9e-6, true], // fails early, before min_requests
  ];
  it.each(cases)('canary agreement of %i pairs with %i agreeing: p≈%f, too low=%s', (n, k, p, low) => {
    const e = pairedEvidence(paired(n, k), '2', '1', T)!;
    expect(e.pairs).toBe(n);
    expect(e.agreements).toBe(k);
    expect(e.pValue).toBeCloseTo(p, 3);
    expect(
      analyzeStep(paired(n, k), '2', '1', {
        ...T,
        max_error_rate: 0.1,
        max_p99_ms: 100,
        max_divergence: 1,
        min_requests: 30,
      }).verdict,
    ).toBe(low ? 'fail' : k >= 0 && n >= 30 ? 'pass' : 'inconclusive');
  });

  it('canary agreement scales the required agreement by the stable-vs-stable baseline on repeated inputs', () => {
    const entries = paired(40, 30);
    // Stable answered inputs 0..9 itself too: 8 times as before, twice differently (a noisy replica).
    for (let i = 0; i < 10; i++) {
      const label = i < 8 ? LABELS[i % 4] : 'd';
      entries.push({
        time: '',
        env: 'e',
        deployedModelId: '1',
        status: 'ok',
        label,
        summary: [i],
        latencyMs: 1,
      });
    }
    const e = pairedEvidence(entries, '2', '1', T)!;
    expect(e.baseline).toEqual({ pairs: 10, agreements: 8, agreement: 0.8 });
    expect(e.required).toBeCloseTo(0.56);
  });

  it('canary agreement finds the class whose score moved most and tests the shift', () => {
    const entries = paired(30, 0);
    const e = pairedEvidence(entries, '2', '1', T)!;
    expect(Math.abs(e.largestShift!.shift)).toBeGreaterThan(0);
    const same = pairedEvidence(paired(30, 30), '2', '1', T)!;
    expect(same.largestShift!.shift).toBe(0);
    expect(same.largestShift!.pValue).toBe(1);
  });

  it('canary agreement without pairs: the class-distribution evidence and the requests it needs', () => {
    // Two-proportion test, worst case p = 0.5, alpha 0.01 two-sided, power 0.8.
    expect(unpairedRequestsNeeded(0.25, 0.01)).toBe(94);
    expect(unpairedRequestsNeeded(0.1, 0.01)).toBe(584);
    const unpaired = paired(40, 40).map(({ shadow: _s, ...e }) => e);
    const stable = unpaired.map((e) => ({ ...e, deployedModelId: '1' }));
    const a = analyzeStep([...unpaired, ...stable], '2', '1', {
      max_error_rate: 0.1,
      max_p99_ms: 100,
      max_divergence: 0.25,
      min_requests: 30,
    });
    expect(a.evidence).toBe('distribution');
    expect(a.summary).toMatch(
      /no paired requests: class distributions; 94 canary requests see a 0\.25 shift/,
    );
  });
});
