import { describe, expect, it } from 'vitest';
import { createRng } from '../../lib/rng.ts';
import { functions } from '../../bench/tune/functions.ts';
import { normalMass, Parzen } from '../../lib/tune/parzen.ts';
import { randomSampler, tpeSampler, type CompletedTrial, type Sampler } from '../../lib/tune/samplers.ts';
import { fromUnit, toUnit, type Assignment, type SearchSpace } from '../../lib/tune/space.ts';

/** Pearson's chi-square statistic of observed counts against expected probabilities. */
function chiSquare(counts: number[], probs: number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((s, c, i) => s + (c - n * probs[i]) ** 2 / (n * probs[i]), 0);
}
/** Chi-square critical values at p = 0.001 by degrees of freedom. */
const CRITICAL: Record<number, number> = { 4: 18.47, 9: 27.88, 19: 43.82 };

function drive(sampler: Sampler, space: SearchSpace, f: (p: Assignment) => number, seed: number, n: number) {
  const rng = createRng(seed);
  const history: CompletedTrial[] = [];
  for (let i = 0; i < n; i++) {
    const params = sampler.suggest(space, history, rng);
    history.push({ params, loss: f(params) });
  }
  return history;
}

const mixed: SearchSpace = {
  lr: { type: 'float', low: 1e-4, high: 0.1, log: true },
  x: { type: 'float', low: -2, high: 3, log: false },
  units: { type: 'int', low: 8, high: 12, log: false },
  width: { type: 'int', low: 1, high: 64, log: true },
  arch: { type: 'choice', values: ['mlp', 'cnn1d', 'gru'] },
};
/** Smooth, with its optimum on the edges of lr, x and units (where clamping piles proposals up). */
const edgy = (p: Assignment) =>
  (Math.log10(Number(p.lr)) + 1) ** 2 +
  (Number(p.x) - 3) ** 2 +
  (Number(p.units) - 12) ** 2 / 4 +
  (Math.log2(Number(p.width)) - 3) ** 2 / 9 +
  (p.arch === 'gru' ? 0 : 0.5);

describe('space', () => {
  it('fromUnit never leaves [low, high], even where exp rounds up', () => {
    const lr = { type: 'float' as const, low: 1e-4, high: 0.1, log: true };
    expect(Math.exp(Math.log(1e-4) + (Math.log(0.1) - Math.log(1e-4)))).toBeGreaterThan(0.1); // the rounding error
    expect(fromUnit(lr, 1)).toBe(0.1);
    expect(fromUnit(lr, 0)).toBeGreaterThanOrEqual(1e-4);
    expect(fromUnit(lr, 0)).toBeCloseTo(1e-4, 12);
    const ints = { type: 'int' as const, low: 3, high: 7, log: false };
    expect(fromUnit(ints, 0)).toBe(3);
    expect(fromUnit(ints, 1)).toBe(7);
    expect(fromUnit(ints, toUnit(ints, 5))).toBe(5);
  });

  it('a uniform unit coordinate gives every integer, the end values included, the same chance', () => {
    const d = { type: 'int' as const, low: 0, high: 4, log: false };
    const counts = [0, 0, 0, 0, 0];
    const rng = createRng(7);
    for (let i = 0; i < 5000; i++) counts[fromUnit(d, rng.next())]++;
    expect(chiSquare(counts, [0.2, 0.2, 0.2, 0.2, 0.2])).toBeLessThan(CRITICAL[4]);
    expect(Math.min(counts[0], counts[4]) / Math.max(...counts.slice(1, 4))).toBeGreaterThan(0.85);
  });
});

describe('tpeSampler', () => {
  for (const multivariate of [true, false]) {
    const mode = multivariate ? 'multivariate' : 'univariate';
    it(`${mode}: no proposal leaves its range, and few land exactly on a bound`, () => {
      const sampler = tpeSampler({ startup: 5, multivariate });
      let floats = 0;
      let atBound = 0;
      for (let seed = 1; seed <= 4; seed++) {
        for (const { params } of drive(sampler, mixed, edgy, seed, 40)) {
          for (const [k, d] of Object.entries(mixed)) {
            const v = params[k];
            if (d.type === 'choice') {
              expect(d.values).toContain(v);
              continue;
            }
            expect(v, k).toBeGreaterThanOrEqual(d.low);
            expect(v, k).toBeLessThanOrEqual(d.high);
            if (d.type === 'int') expect(Number.isInteger(v), k).toBe(true);
            else {
              floats++;
              if (v === d.low || v === d.high) atBound++;
            }
          }
        }
      }
      expect(atBound / floats).toBeLessThan(0.02);
    });
  }

  it('TPE beats random search on a cheap 2-D function over a handful of seeds', () => {
    const space: SearchSpace = {
      a: { type: 'float', low: -5, high: 10, log: false },
      b: { type: 'float', low: 0, high: 15, log: false },
    };
    const branin = (p: Assignment) => {
      const x1 = Number(p.a);
      const x2 = Number(p.b);
      return (
        (x2 - (5.1 / (4 * Math.PI ** 2)) * x1 ** 2 + (5 / Math.PI) * x1 - 6) ** 2 +
        10 * (1 - 1 / (8 * Math.PI)) * Math.cos(x1) +
        10
      );
    };
    let wins = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const best = (s: Sampler) => Math.min(...drive(s, space, branin, seed, 30).map((h) => h.loss));
      if (best(tpeSampler({ startup: 8 })) < best(randomSampler)) wins++;
    }
    expect(wins).toBeGreaterThanOrEqual(5);
  });
});

describe('Parzen', () => {
  const obs: Assignment[] = [
    { u: 0.02, k: 0, c: 'a' },
    { u: 0.3, k: 4, c: 'a' },
    { u: 0.31, k: 4, c: 'b' },
    { u: 0.97, k: 2, c: 'a' },
  ];
  const space: SearchSpace = {
    u: { type: 'float', low: 0, high: 1, log: false },
    k: { type: 'int', low: 0, high: 4, log: false },
    c: { type: 'choice', values: ['a', 'b', 'c'] },
  };

  for (const priorWeight of [0.2, 1, 10]) {
    it(`draws follow its density for a prior weight of ${priorWeight} (floats, ints, choices)`, () => {
      for (const multivariate of [true, false]) {
        const bins = 20;
        const p = new Parzen(space, ['u', 'k', 'c'], obs, { multivariate, nDims: 3, priorWeight });
        const single = (key: string) =>
          new Parzen(space, [key], obs, { multivariate, nDims: 3, priorWeight });
        const pu = single('u');
        const pk = single('k');
        const pc = single('c');
        // Expected bin probabilities from each marginal's density (midpoint rule on 20 sub-steps).
        const floatProbs = Array.from({ length: bins }, (_, b) => {
          let s = 0;
          for (let j = 0; j < 20; j++) s += Math.exp(pu.logPdf([(b + (j + 0.5) / 20) / bins])) / (bins * 20);
          return s;
        });
        const intProbs = [0, 1, 2, 3, 4].map((v) => Math.exp(pk.logPdf(pk.encode({ k: v }))));
        const catProbs = ['a', 'b', 'c'].map((v) => Math.exp(pc.logPdf(pc.encode({ c: v }))));
        expect(intProbs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
        expect(catProbs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
        expect(floatProbs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
        const fc = new Array<number>(bins).fill(0);
        const kc = [0, 0, 0, 0, 0];
        const cc = [0, 0, 0];
        const rng = createRng(11);
        const out: Assignment = {};
        for (let i = 0; i < 6000; i++) {
          p.decode(p.sample(rng), out);
          fc[Math.min(bins - 1, Math.floor(Number(out.u) * bins))]++;
          kc[Number(out.k)]++;
          cc[['a', 'b', 'c'].indexOf(String(out.c))]++;
        }
        expect(chiSquare(fc, floatProbs)).toBeLessThan(CRITICAL[19]);
        expect(chiSquare(kc, intProbs)).toBeLessThan(CRITICAL[4]);
        expect(chiSquare(cc, catProbs)).toBeLessThan(CRITICAL[4] - 4.65); // df 2: 13.82
      }
    });
  }

  it('with no observations, integer end values are about as likely as interior ones', () => {
    const p = new Parzen({ k: space.k }, ['k'], [], { multivariate: true, nDims: 1, priorWeight: 1 });
    const probs = [0, 1, 2, 3, 4].map((v) => Math.exp(p.logPdf(p.encode({ k: v }))));
    expect(Math.min(probs[0], probs[4]) / Math.max(...probs)).toBeGreaterThan(0.85);
  });

  const cube: SearchSpace = Object.fromEntries(
    [0, 1, 2, 3, 4, 5].map((i) => [`x${i}`, { type: 'float' as const, low: 0, high: 1, log: false }]),
  );
  const centre = Object.fromEntries(Object.keys(cube).map((k) => [k, 0.5]));
  /** Standard deviation of N(0.5, σ²) truncated to [0, 1]. */
  const truncatedSd = (sigma: number) => {
    const a = 0.5 / sigma;
    const phi = Math.exp(-0.5 * a * a) / Math.sqrt(2 * Math.PI);
    return sigma * Math.sqrt(1 - (2 * a * phi) / normalMass(-a, a));
  };
  const widthCases = [
    { why: "Scott's rule at one trial, sigma0 0.08, above the floor 1/40", n: 1, trials: 38, sigma: 0.08 },
    {
      why: "Scott's rule shrinks as n^(-1/(d+4)) (10 trials, 6 dims)",
      n: 10,
      trials: 98,
      sigma: 0.08 * 10 ** -0.1,
    },
    { why: 'the floor 1/(trials + 2) early in a study', n: 1, trials: 2, sigma: 0.25 },
    {
      why: "Optuna's floor 1/(kernels + 1) when no trial count is given",
      n: 1,
      trials: undefined,
      sigma: 1 / 3,
    },
  ];
  for (const { why, n, trials, sigma } of widthCases) {
    it(`multivariate kernel width: ${why}`, () => {
      const obs = new Array<Assignment>(n).fill(centre);
      const p = new Parzen(cube, Object.keys(cube), obs, {
        multivariate: true,
        nDims: 6,
        priorWeight: 1e-9,
        trials,
      });
      const rng = createRng(5);
      const draws = Array.from({ length: 4000 }, () => p.sample(rng)[2]);
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      const sd = Math.sqrt(draws.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws.length - 1));
      expect(sd).toBeGreaterThan(truncatedSd(sigma) * 0.95);
      expect(sd).toBeLessThan(truncatedSd(sigma) * 1.05);
    });
  }

  it('univariate kernels ignore the trial count (Optuna floor, neighbour gaps)', () => {
    const obs = [{ u: 0.3 }, { u: 0.32 }, { u: 0.9 }];
    const one = { u: space.u };
    const a = new Parzen(one, ['u'], obs, { multivariate: false, nDims: 1, priorWeight: 1 });
    const b = new Parzen(one, ['u'], obs, { multivariate: false, nDims: 1, priorWeight: 1, trials: 60 });
    for (const u of [0.05, 0.31, 0.6, 0.99]) expect(b.logPdf([u])).toBe(a.logPdf([u]));
  });
});

describe('tpeSampler on Hartmann-6 (6 dimensions, 40 trials, seeds apart from the bench seeds)', () => {
  const fn = functions.hartmann6;
  const seeds = Array.from({ length: 10 }, (_, i) => 301 + i);
  const medianRegret = (sampler: Sampler) => {
    const r = seeds
      .map((seed) => Math.min(...drive(sampler, fn.space, fn.f, seed, 40).map((h) => h.loss)) - fn.minimum)
      .sort((a, b) => a - b);
    return (r[4] + r[5]) / 2;
  };

  it("the default beats random search and the same sampler with Optuna 3.1's width and floor", () => {
    const ours = medianRegret(tpeSampler({ startup: 8 }));
    const optunaConstants = medianRegret(tpeSampler({ startup: 8, sigma0: 0.2, floor: 'optuna' }));
    const random = medianRegret(randomSampler);
    expect(ours).toBeLessThan(0.7 * optunaConstants);
    expect(ours).toBeLessThan(0.5 * random);
  });
});

describe('tpeSampler on a hostile history and degenerate spaces', () => {
  const space: SearchSpace = {
    lr: { type: 'float', low: 0.005, high: 0.05, log: true },
    units: { type: 'int', low: 16, high: 256, log: true },
    arch: { type: 'choice', values: ['mlp', 'gru'] },
  };
  /** Proposes `n` trials after `pre`, each worse than the one before (so `pre` stays best). */
  const proposals = (sampler: Sampler, sp: SearchSpace, pre: CompletedTrial[], n: number, seed = 1) => {
    const rng = createRng(seed);
    const history = [...pre];
    for (let i = 0; i < n; i++) history.push({ params: sampler.suggest(sp, history, rng), loss: i });
    return history.slice(pre.length).map((h) => h.params);
  };
  const inSpace = (sp: SearchSpace, p: Assignment) =>
    Object.entries(sp).every(([k, d]) =>
      d.type === 'choice'
        ? d.values.includes(p[k])
        : typeof p[k] === 'number' && p[k] >= d.low && p[k] <= d.high,
    );

  const stale: { why: string; params: Assignment }[] = [
    { why: 'a key missing (the space grew since)', params: { lr: 0.01, arch: 'mlp' } },
    { why: 'a number given as text', params: { lr: 'fast', units: 32, arch: 'mlp' } },
    { why: 'a choice no longer listed', params: { lr: 0.01, units: 32, arch: 'cnn1d' } },
  ];
  for (const multivariate of [true, false]) {
    for (const { why, params } of stale) {
      it(`${multivariate ? 'multivariate' : 'univariate'}: a best trial with ${why} never yields a proposal outside the space`, () => {
        const got = proposals(tpeSampler({ startup: 3, multivariate }), space, [{ params, loss: -1 }], 12);
        for (const p of got) expect(inSpace(space, p), JSON.stringify(p)).toBe(true);
      });
    }
  }

  it('a best trial outside the range (a baseline of current params) does not pin proposals to one bound value', () => {
    const baseline = { params: { lr: 0.00005, units: 8, arch: 'mlp' }, loss: -1 };
    const got = proposals(tpeSampler({ startup: 3 }), space, [baseline], 20);
    for (const p of got) expect(inSpace(space, p), JSON.stringify(p)).toBe(true);
    expect(new Set(got.map((p) => p.lr)).size).toBe(got.length);
  });

  it('proposes no assignment twice while the space still holds untried ones (startup and TPE)', () => {
    const small: SearchSpace = {
      k: { type: 'int', low: 1, high: 3, log: false },
      c: { type: 'choice', values: ['a', 'b'] },
      one: { type: 'choice', values: ['only'] },
      fixed: { type: 'int', low: 4, high: 4, log: false },
    };
    for (let seed = 1; seed <= 5; seed++) {
      const got = proposals(tpeSampler({ startup: 3 }), small, [], 6, seed).map((p) => JSON.stringify(p));
      expect(new Set(got).size, got.join(' ')).toBe(6);
    }
    const discrete: SearchSpace = {
      units: { type: 'int', low: 16, high: 256, log: true },
      arch: { type: 'choice', values: ['mlp', 'cnn1d', 'gru'] },
      batch: { type: 'choice', values: [16, 32, 64] },
    };
    let duplicates = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const got = proposals(tpeSampler({ startup: 8 }), discrete, [], 40, seed).map((p) => JSON.stringify(p));
      duplicates += got.length - new Set(got).size;
    }
    expect(duplicates).toBe(0);
  });

  it('keeps proposing valid values once every assignment has been tried', () => {
    const tiny: SearchSpace = { k: { type: 'int', low: 1, high: 2, log: false } };
    const got = proposals(tpeSampler({ startup: 1 }), tiny, [], 6);
    expect(new Set(got.map((p) => p.k))).toEqual(new Set([1, 2]));
  });

  const badOptions = [
    { candidates: 0 },
    { candidates: 1.5 },
    { priorWeight: 0 },
    { priorWeight: Number.NaN },
    { startup: -1 },
  ];
  for (const options of badOptions) {
    const [[key, value]] = Object.entries(options);
    it(`tpeSampler rejects ${key} ${value} instead of proposing NaN`, () => {
      expect(() => tpeSampler(options)).toThrow(/tpeSampler/);
    });
  }

  it('a range as wide as doubles allow maps to and from the unit interval without overflow', () => {
    const wide = { type: 'float' as const, low: -1e308, high: 1e308, log: false };
    expect(toUnit(wide, 0)).toBeCloseTo(0.5, 12);
    expect(fromUnit(wide, 0.5)).toBe(0);
    expect(fromUnit(wide, 0.25)).toBeCloseTo(-5e307, -300);
    const got = proposals(tpeSampler({ startup: 3 }), { x: wide }, [], 12);
    expect(new Set(got.map((p) => p.x)).size).toBe(12);
    for (const p of got) expect(Number.isFinite(p.x)).toBe(true);
  });
});
