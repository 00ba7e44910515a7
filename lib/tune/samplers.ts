/**
 * Samplers: random, and a Tree-structured Parzen Estimator built the way Optuna builds its
 * Parzen estimators. Completed trials are split into the best γ(n) and the rest; each side gets
 * a mixture of one kernel per trial plus a prior kernel (weight 1): truncated Gaussians on each
 * numeric dimension's [0, 1] coordinate (ints widened by half a step so end values count like
 * interior ones; a cell's mass, not a point density, scores an int) and smoothed one-hot rows on
 * choices. Candidates drawn from the good mixture are ranked by log l(x) − log g(x). In the
 * default multivariate mode one kernel spans every dimension (so the sampler learns which
 * combinations are good); the univariate mode fits each dimension alone.
 *
 * Where the multivariate mode departs from Optuna 3.1 (chosen on 200 development seeds, checked
 * on bench/tune.ts's 20 seeds and 20 more held out; see the README's bench rows): Scott's-rule
 * width at one trial 0.08 of the range (Optuna: 0.2), and a kernel-width floor of
 * 1 / (completed trials + 2) instead of 1 / (kernels + 1). Optuna's floor follows the size of
 * the good side, so with the 1–4 good trials of a 40-trial study every good kernel is a third
 * to a sixth of each range wide: in 6 dimensions l(x) is then close to the prior and the
 * sampler hardly exploits what it found.
 * With the floor tied to how much the study has seen, γ is Optuna's own min(⌈0.1·n⌉, 25).
 * Everything is seeded: the same trials and rng state give the same suggestion. The Parzen
 * mixtures live in parzen.ts, median pruning in pruner.ts.
 */
import { LockstepError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import { assignmentCount, fromUnit, type Assignment, type Dimension, type SearchSpace } from './space.ts';
import { Parzen, type ParzenOptions } from './parzen.ts';

export interface CompletedTrial {
  params: Assignment;
  /** Objective value, oriented so that LOWER is better (callers negate maximized metrics). */
  loss: number;
}

export interface Sampler {
  readonly name: string;
  suggest(space: SearchSpace, history: CompletedTrial[], rng: Rng): Assignment;
}

function sampleDimension(d: Dimension, rng: Rng): string | number | boolean {
  if (d.type === 'choice') return d.values[Math.floor(rng.next() * d.values.length) % d.values.length];
  return fromUnit(d, rng.next());
}

export const randomSampler: Sampler = {
  name: 'random',
  suggest(space, _history, rng) {
    const out: Assignment = {};
    for (const [k, d] of Object.entries(space)) out[k] = sampleDimension(d, rng);
    return out;
  },
};

export interface TpeOptions {
  /** Random trials before TPE starts (default 10). */
  startup: number;
  /**
   * How many of n completed trials count as good (default Optuna's min(⌈0.1·n⌉, 25) in
   * multivariate mode, min(⌈0.2·n⌉, 25) in univariate mode, where 0.1 trailed on the bench).
   */
  gamma: (n: number) => number;
  /** Candidates drawn from the good density per suggestion (default 24). */
  candidates: number;
  /** Weight of the prior kernel against each trial's weight of (at most) 1 (default 1). */
  priorWeight: number;
  /** One joint kernel per trial over all dimensions (default), or each dimension alone. */
  multivariate: boolean;
  /** Multivariate kernel width at one trial, as a share of the range (default 0.08; Optuna 0.2). */
  sigma0: number;
  /**
   * Multivariate kernel width floor: 'trials' (default) 1 / (completed trials + 2), 'optuna'
   * Optuna's 1 / (kernels + 1). Univariate mode always uses Optuna's.
   */
  floor: 'trials' | 'optuna';
}

/** Optuna's default_gamma: the best min(⌈0.1·n⌉, 25) of n trials are good (multivariate default). */
export const defaultGamma = (n: number): number => Math.min(Math.ceil(0.1 * n), 25);
/** The univariate default, min(⌈0.2·n⌉, 25). */
export const univariateGamma = (n: number): number => Math.min(Math.ceil(0.2 * n), 25);

/**
 * Whether a trial's params can inform the sampler: every dimension present, numbers finite
 * (out-of-range values count; they sit on the nearest bound), choices among those listed. A
 * trial from before the space changed may miss a key or hold a dropped choice.
 */
export function fitsSpace(space: SearchSpace, params: Assignment): boolean {
  return Object.entries(space).every(([key, d]) =>
    d.type === 'choice'
      ? d.values.includes(params[key])
      : typeof params[key] === 'number' && Number.isFinite(params[key]),
  );
}

/** Redraws a repeated proposal up to this many times (TPE first, then at random). */
const REDRAWS = 4;
const RANDOM_REDRAWS = 100;

function checkTpeOptions(o: TpeOptions): void {
  const bad = (key: string, value: number, want: string) =>
    new LockstepError(`tpeSampler: ${key} must be ${want}, got "${value}". Pass a valid ${key}.`);
  if (!(Number.isInteger(o.candidates) && o.candidates >= 1))
    throw bad('candidates', o.candidates, 'an integer >= 1');
  if (!(Number.isFinite(o.priorWeight) && o.priorWeight > 0))
    throw bad('priorWeight', o.priorWeight, 'a number > 0');
  if (!(Number.isInteger(o.startup) && o.startup >= 0)) throw bad('startup', o.startup, 'an integer >= 0');
  if (!(Number.isFinite(o.sigma0) && o.sigma0 > 0)) throw bad('sigma0', o.sigma0, 'a number > 0');
}

export function tpeSampler(options: Partial<TpeOptions> = {}): Sampler {
  const multivariate = options.multivariate ?? true;
  const o: TpeOptions = {
    startup: 10,
    gamma: multivariate ? defaultGamma : univariateGamma,
    candidates: 24,
    priorWeight: 1,
    multivariate,
    sigma0: 0.08,
    floor: 'trials',
    ...options,
  };
  checkTpeOptions(o);
  return {
    name: o.multivariate ? 'tpe' : 'tpe-univariate',
    suggest(space, history, rng) {
      // Every assignment already run (failed and pruned ones too; a caller passes running
      // trials with a NaN loss): training is seeded, so running one again repeats its result
      // and wastes the trial. Only a space with nothing left untried (ints and choices only)
      // gets a repeat.
      const keys = Object.keys(space);
      const isNew = (a: Assignment) => !history.some((t) => keys.every((k) => t.params[k] === a[k]));
      const done = history.filter((t) => Number.isFinite(t.loss) && fitsSpace(space, t.params));
      let proposal: Assignment | undefined;
      if (done.length >= o.startup) {
        for (let i = 0; i <= REDRAWS && (!proposal || !isNew(proposal)); i++)
          proposal = propose(space, done, rng, isNew);
      }
      for (let i = 0; i < RANDOM_REDRAWS && (!proposal || !isNew(proposal)); i++)
        proposal = randomSampler.suggest(space, history, rng);
      return proposal!;
    },
  };

  /** One TPE proposal; in one group (multivariate), the best-scoring candidate not yet run. */
  function propose(
    space: SearchSpace,
    done: CompletedTrial[],
    rng: Rng,
    isNew: (a: Assignment) => boolean,
  ): Assignment {
    // Stable sort: ties keep trial order. Each side keeps trial order for its weights.
    const ranked = done.map((t, i) => ({ t, i })).sort((a, b) => a.t.loss - b.t.loss || a.i - b.i);
    const nGood = Math.max(1, Math.min(done.length, o.gamma(done.length)));
    const byOrder = (xs: typeof ranked) => xs.sort((a, b) => a.i - b.i).map((x) => x.t.params);
    const good = byOrder(ranked.slice(0, nGood));
    const bad = byOrder(ranked.slice(nGood));
    const keys = Object.keys(space);
    const groups = o.multivariate ? [keys] : keys.map((k) => [k]);
    const out: Assignment = {};
    // Candidates are screened for repeats one by one only where repeats are likely (no float
    // range) and a candidate is a whole assignment; the caller checks the final proposal.
    const screen = groups.length === 1 && assignmentCount(space) < Infinity;
    const parzen: ParzenOptions = {
      multivariate: o.multivariate,
      nDims: keys.length,
      priorWeight: o.priorWeight,
      sigma0: o.sigma0,
      trials: o.floor === 'trials' ? done.length : undefined,
    };
    for (const group of groups) {
      const l = new Parzen(space, group, good, parzen);
      const g = new Parzen(space, group, bad, parzen);
      let best: number[] | undefined;
      let bestScore = -Infinity;
      let bestIsNew = false;
      for (let c = 0; c < o.candidates; c++) {
        const x = l.sample(rng);
        const score = l.logPdf(x) - g.logPdf(x);
        let fresh = true;
        if (screen) {
          l.decode(x, out);
          fresh = isNew(out);
        }
        // A new candidate beats any repeat; among equals, the higher score (NaN never wins).
        if (!best || (fresh && !bestIsNew) || (fresh === bestIsNew && score > bestScore)) {
          best = x;
          bestScore = Number.isNaN(score) ? -Infinity : score;
          bestIsNew = fresh;
        }
      }
      l.decode(best!, out);
    }
    return out;
  }
}
