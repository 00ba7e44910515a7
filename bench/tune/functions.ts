/**
 * Benchmark functions for the sampler comparison (the same definitions as optuna_study.py):
 * Branin, Hartmann-6 and a mixed space shaped like our params (log-uniform lr, integer units,
 * dropout, a categorical whose best lr differs). Each has a known minimum, for simple regret.
 */
import type { Assignment, SearchSpace } from '../../lib/tune/space.ts';

export interface BenchFunction {
  space: SearchSpace;
  f(p: Assignment): number;
  minimum: number;
}

const A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
];
const ALPHA = [1.0, 1.2, 3.0, 3.2];
const ARCH_PENALTY: Record<string, number> = { mlp: 0.25, cnn1d: 0, gru: 0.1 };
const ARCH_LR: Record<string, number> = { mlp: -2, cnn1d: -2.5, gru: -3 };

const unitFloat = { type: 'float' as const, low: 0, high: 1, log: false };

export const functions: Record<string, BenchFunction> = {
  branin: {
    space: {
      x1: { type: 'float', low: -5, high: 10, log: false },
      x2: { type: 'float', low: 0, high: 15, log: false },
    },
    f(p) {
      const x1 = Number(p.x1);
      const x2 = Number(p.x2);
      const b = 5.1 / (4 * Math.PI ** 2);
      const c = 5 / Math.PI;
      return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * Math.PI)) * Math.cos(x1) + 10;
    },
    minimum: 0.397887357729738,
  },
  hartmann6: {
    space: Object.fromEntries([0, 1, 2, 3, 4, 5].map((i) => [`x${i}`, unitFloat])),
    f(p) {
      const x = [0, 1, 2, 3, 4, 5].map((i) => Number(p[`x${i}`]));
      let total = 0;
      for (let i = 0; i < 4; i++) {
        let inner = 0;
        for (let j = 0; j < 6; j++) inner += A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2;
        total -= ALPHA[i] * Math.exp(-inner);
      }
      return total;
    },
    minimum: -3.32236801141551,
  },
  mixed: {
    space: {
      lr: { type: 'float', low: 1e-4, high: 1e-1, log: true },
      units: { type: 'int', low: 16, high: 256, log: false },
      dropout: { type: 'float', low: 0, high: 0.5, log: false },
      arch: { type: 'choice', values: ['mlp', 'cnn1d', 'gru'] },
    },
    f(p) {
      const arch = String(p.arch);
      return (
        0.3 * (Math.log10(Number(p.lr)) - ARCH_LR[arch]) ** 2 +
        ((Number(p.units) - 96) / 120) ** 2 +
        2 * (Number(p.dropout) - 0.2) ** 2 +
        ARCH_PENALTY[arch]
      );
    },
    minimum: 0,
  },
};
