import { describe, expect, it } from 'vitest';
import { analyzeStep, type AnalysisThresholds } from '../../lib/canary/analysis.ts';
import type { PredictionLogEntry } from '../../lib/serving/logs.ts';

const T: AnalysisThresholds = {
  max_error_rate: 0.5,
  max_p99_ms: 10_000,
  max_divergence: 1,
  min_requests: 10,
};

/** `n` entries of deployed model `id`: labels in turn from `labels`, latencies from `latency(i)`. */
function entries(
  id: string,
  n: number,
  labels: string[],
  latency: (i: number) => number = (i) => 10 + (i % 7),
  errors = 0,
): PredictionLogEntry[] {
  return Array.from({ length: n }, (_, i) =>
    i < errors
      ? { time: '', env: 'e', deployedModelId: id, status: 'error' as const, latencyMs: latency(i) }
      : {
          time: '',
          env: 'e',
          deployedModelId: id,
          status: 'ok' as const,
          label: labels[i % labels.length],
          latencyMs: latency(i),
        },
  );
}

describe('canary analysis', () => {
  it('canary analysis holds with too few requests and says how many more the class test needs', () => {
    // 10 canary and 90 stable requests (k = 9), two labels (df 1), defaults α 0.01, power 0.8,
    // class_share 0.1: λ = (z(0.995) + z(0.8))² = (2.5758 + 0.8416)² = 11.679, and
    // n = λ (1 + k) / (4 δ² k) = 11.679 · 10 / (4 · 0.01 · 9) = 324.4 → 325 canary requests.
    // (The error test needs 130 and the latency test 93: the class test decides.)
    const a = analyzeStep(
      [...entries('2', 10, ['happy', 'sad']), ...entries('1', 90, ['happy', 'sad'])],
      '2',
      '1',
      T,
      { percent: 10 },
    );
    expect(a.verdict).toBe('inconclusive');
    expect(a.needed).toBe(325);
    expect(a.tests.map((t) => [t.test, t.needed])).toEqual([
      ['class distribution', 325],
      ['error rate', 130],
      ['latency', 93],
    ]);
    expect(a.neededBy).toBe(
      'chi-square (df 1) to see an L∞ class-share shift of 0.1 with 80% power at α 0.01, 9 stable per canary request',
    );
  });

  it('canary analysis fails a shifted class distribution, naming the test, statistic, p-value and effect', () => {
    // canary happy/sad/angry 24/8/8 vs stable 60/60/60:
    // chi2_contingency([[24,8,8],[60,60,60]], correction=False) -> statistic 9.8599, p 0.0072267
    const canary = entries('2', 40, ['happy', 'happy', 'happy', 'sad', 'angry']);
    const a = analyzeStep([...canary, ...entries('1', 180, ['happy', 'sad', 'angry'])], '2', '1', T);
    expect(a.verdict).toBe('fail');
    expect(a.failures).toEqual([
      expect.stringMatching(
        /^class distribution differs from stable \(χ² = 9\.9, df 2, p = 0\.0072, L∞ 0\.27\)$/,
      ),
    ]);
  });

  it('canary analysis fails a higher error rate and a slower canary by their tests', () => {
    const stable = entries('1', 200, ['happy']);
    // 8 of 40 canary errors vs none: z = 6.3, far below α.
    const erring = analyzeStep([...entries('2', 40, ['happy'], undefined, 8), ...stable], '2', '1', T);
    expect(erring.failures).toEqual([
      expect.stringMatching(/^error rate higher than stable \(z = [\d.]+, p = [\de.-]+, 20\.0% vs 0\.0%\)$/),
    ]);
    // Every canary request slower than every stable one: U = 40 · 200, P(slower) 1.
    const slow = analyzeStep([...entries('2', 40, ['happy'], (i) => 30 + i), ...stable], '2', '1', T);
    expect(slow.failures).toEqual([
      expect.stringMatching(
        /^latency higher than stable \(Mann-Whitney U = 8000, z = [\d.]+, p < 1e-16, P\(slower\) 1\.00, median \+\d+\.\d ms\)$/,
      ),
    ]);
  });

  it('canary analysis passes a significant difference smaller than the minimum effect', () => {
    // 52/48 vs 48/52 on 4000 requests each: χ² = 12.8, p = 0.0003, but L∞ 0.04 < class_share 0.1.
    const canary = entries(
      '2',
      4000,
      Array.from({ length: 25 }, (_, i) => (i < 13 ? 'happy' : 'sad')),
    );
    const stable = entries(
      '1',
      4000,
      Array.from({ length: 25 }, (_, i) => (i < 12 ? 'happy' : 'sad')),
    );
    const a = analyzeStep([...canary, ...stable], '2', '1', T);
    const chi = a.tests.find((t) => t.test === 'class distribution')!;
    expect(chi.pValue).toBeLessThan(0.01);
    expect(chi.effect).toBeCloseTo(0.04, 6);
    expect(a.verdict).toBe('pass');
  });
});
