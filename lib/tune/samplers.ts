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
 * Everything is seeded: the same trials and rng state give the same suggestion.
 */
import { LockstepError } from '../errors.ts';
import type { Rng } from '../rng.ts';
import {
  assignmentCount,
  fromUnit,
  toUnit,
  unitCell,
  type Assignment,
  type Dimension,
  type SearchSpace,
} from './space.ts';

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

function gaussian(rng: Rng): number {
  const u = 1 - rng.next(); // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Complementary error function (Numerical Recipes' erfcc: relative error < 1.2e-7, tails included). */
function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** P(a < Z < b) for a standard normal Z, accurate in either tail. */
export function normalMass(a: number, b: number): number {
  if (b <= a) return 0;
  if (a >= 0) return 0.5 * (erfc(a / Math.SQRT2) - erfc(b / Math.SQRT2));
  if (b <= 0) return 0.5 * (erfc(-b / Math.SQRT2) - erfc(-a / Math.SQRT2));
  return 1 - 0.5 * erfc(b / Math.SQRT2) - 0.5 * erfc(-a / Math.SQRT2);
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const TINY = 1e-300;

/** A draw from N(mu, sigma²) truncated to [0, 1], by redrawing (never by clamping). */
function truncatedNormal(mu: number, sigma: number, rng: Rng): number {
  for (let i = 0; i < 1000; i++) {
    const x = mu + sigma * gaussian(rng);
    if (x >= 0 && x <= 1) return x;
  }
  return Math.min(1, Math.max(0, mu)); // unreachable in practice: every kernel keeps ≥ ~1/3 of its mass inside
}

/** Optuna's default_weights: flat up to 25 trials, then older trials ramp down to 1/n. */
function trialWeights(n: number): number[] {
  if (n < 25) return new Array<number>(n).fill(1);
  const ramp = n - 25;
  return Array.from({ length: n }, (_, i) =>
    i < ramp ? 1 / n + ((1 - 1 / n) * i) / Math.max(1, ramp - 1) : 1,
  );
}

type NumericDim = Extract<Dimension, { type: 'float' | 'int' }>;

/** One dimension of a mixture: numeric kernels (mu, sigma on [0, 1]) or choice rows. */
type Part =
  | { key: string; kind: 'num'; d: NumericDim; mu: number[]; sigma: number[]; logZ: number[] }
  | { key: string; kind: 'cat'; values: (string | number | boolean)[]; logP: number[][]; cum: number[][] };

/** How a Parzen mixture sets its kernels (see `TpeOptions` for what each means). */
export interface ParzenOptions {
  /** One joint kernel per trial with a Scott's-rule width, or neighbour-gap widths per dimension. */
  multivariate: boolean;
  /** Dimensions of the whole space (Scott's rule shrinks widths as n^(-1/(dims+4))). */
  nDims: number;
  priorWeight: number;
  /** Multivariate kernel width at one observation, as a share of the range (default 0.08). */
  sigma0?: number;
  /**
   * Completed trials of the study, for the multivariate width floor 1 / (trials + 2). Without
   * it, the floor is Optuna's 1 / (kernels + 1), which follows this mixture's own size.
   */
  trials?: number;
}

/**
 * A Parzen mixture over the `keys` of `space`: kernel i < n sits on observation i, kernel n is
 * the prior (mid-range, σ = the whole range; uniform over choices). Weights are trialWeights(n)
 * then `priorWeight`, normalized, and the same weights are used to draw and to score.
 */
export class Parzen {
  private readonly logW: number[];
  private readonly cumW: number[];
  private readonly parts: Part[];

  constructor(space: SearchSpace, keys: string[], obs: Assignment[], options: ParzenOptions) {
    const { multivariate, nDims, priorWeight, sigma0 = 0.08, trials } = options;
    const n = obs.length;
    const nk = n + 1;
    const w = [...trialWeights(n), priorWeight];
    const total = w.reduce((a, b) => a + b, 0);
    this.logW = w.map((x) => Math.log(x / total));
    let acc = 0;
    this.cumW = w.map((x) => (acc += x / total));
    this.parts = keys.map((key): Part => {
      const d = space[key];
      if (d.type === 'choice') {
        const rows: number[][] = [];
        for (let i = 0; i < nk; i++) {
          const row = d.values.map(() => priorWeight / nk);
          if (i < n) {
            const j = d.values.indexOf(obs[i][key]);
            if (j >= 0) row[j] += 1;
          }
          const s = row.reduce((a, b) => a + b, 0);
          rows.push(row.map((x) => x / s));
        }
        return {
          key,
          kind: 'cat',
          values: d.values,
          logP: rows.map((r) => r.map(Math.log)),
          cum: rows.map((r) => {
            let c = 0;
            return r.map((x) => (c += x));
          }),
        };
      }
      // A value outside the range (the baseline's current params, or a trial from a narrower
      // space) sits on the nearest bound: a kernel centred far outside keeps almost no mass
      // inside, and every draw from it would fall back to the same bound value.
      const mus = obs.map((o) => Math.min(1, Math.max(0, toUnit(d, Number(o[key])))));
      let sig: number[];
      if (multivariate) {
        sig = mus.map(() => sigma0 * Math.pow(Math.max(n, 1), -1 / (nDims + 4)));
      } else {
        // Each kernel as wide as the larger gap to its neighbours (the prior's mid point
        // included; the outermost kernels use their inner gap, as Optuna does by default).
        const pts = [...mus.map((m, i) => ({ m, i })), { m: 0.5, i: -1 }].sort((a, b) => a.m - b.m);
        const withEnds = [0, ...pts.map((p) => p.m), 1];
        sig = new Array<number>(n);
        pts.forEach((p, j) => {
          let s = Math.max(withEnds[j + 1] - withEnds[j], withEnds[j + 2] - withEnds[j + 1]);
          if (withEnds.length >= 4 && j === 0) s = withEnds[2] - withEnds[1];
          if (withEnds.length >= 4 && j === pts.length - 1)
            s = withEnds[withEnds.length - 2] - withEnds[withEnds.length - 3];
          if (p.i >= 0) sig[p.i] = s;
        });
      }
      // Optuna's magic clip: no kernel narrower than 1 / min(100, kernels + 1) of the range;
      // in multivariate mode with the study's trial count given, 1 / min(100, trials + 2), so a
      // small good side is not held near the prior's width (see the file comment).
      const floor = 1 / Math.min(100, multivariate && trials !== undefined ? trials + 2 : 1 + nk);
      sig = sig.map((s) => Math.min(1, Math.max(floor, s)));
      const mu = [...mus, 0.5];
      const sigma = [...sig, 1];
      const logZ = mu.map((m, i) => Math.log(Math.max(TINY, normalMass(-m / sigma[i], (1 - m) / sigma[i]))));
      return { key, kind: 'num', d, mu, sigma, logZ };
    });
  }

  /** Draws one point (in [0, 1] coordinates / choice indices): a kernel, then each dimension from it. */
  sample(rng: Rng): number[] {
    const r = rng.next();
    let k = this.cumW.findIndex((c) => r < c);
    if (k < 0) k = this.cumW.length - 1;
    return this.parts.map((p) => {
      if (p.kind === 'cat') {
        const rc = rng.next();
        const j = p.cum[k].findIndex((c) => rc < c);
        return j < 0 ? p.values.length - 1 : j;
      }
      const u = truncatedNormal(p.mu[k], p.sigma[k], rng);
      return p.d.type === 'int' ? toUnit(p.d, fromUnit(p.d, u)) : u;
    });
  }

  /** log density of a point from `sample` (a cell's log mass for ints, a log pmf for choices). */
  logPdf(x: number[]): number {
    const terms = this.logW.slice();
    this.parts.forEach((p, j) => {
      if (p.kind === 'cat') {
        for (let k = 0; k < terms.length; k++) terms[k] += p.logP[k][x[j]];
        return;
      }
      const isInt = p.d.type === 'int';
      const cell = isInt ? unitCell(p.d, fromUnit(p.d, x[j])) : undefined;
      for (let k = 0; k < terms.length; k++) {
        const m = p.mu[k];
        const s = p.sigma[k];
        if (cell) {
          terms[k] += Math.log(Math.max(TINY, normalMass((cell[0] - m) / s, (cell[1] - m) / s))) - p.logZ[k];
        } else {
          const z = (x[j] - m) / s;
          terms[k] += -0.5 * z * z - LOG_SQRT_2PI - Math.log(s) - p.logZ[k];
        }
      }
    });
    const top = Math.max(...terms);
    let s = 0;
    for (const t of terms) s += Math.exp(t - top);
    return top + Math.log(s);
  }

  /** Converts an assignment into the point `logPdf` takes. */
  encode(a: Assignment): number[] {
    return this.parts.map((p) =>
      p.kind === 'cat' ? p.values.indexOf(a[p.key]) : toUnit(p.d, Number(a[p.key])),
    );
  }

  /** Converts a sampled point back to an assignment of values. */
  decode(x: number[], out: Assignment): void {
    this.parts.forEach((p, j) => {
      out[p.key] = p.kind === 'cat' ? p.values[x[j]] : fromUnit(p.d, x[j]);
    });
  }
}

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

/**
 * Median pruning, as Optuna's MedianPruner does it: after `warmup` epochs, once `startupTrials`
 * trials have completed, a trial whose best value so far is worse than the median of the
 * COMPLETED trials' values at the same epoch stops (pruned and running trials never set the
 * bar). Values are losses (lower is better).
 */
export class MedianPruner {
  private readonly curves = new Map<number, number[]>();
  private readonly completed = new Set<number>();
  constructor(
    private readonly warmup = 3,
    private readonly startupTrials = 1,
  ) {}

  /** Records `value` for `trial` at `epoch` (1-based) and says whether to stop it. */
  report(trial: number, epoch: number, value: number): boolean {
    let curve = this.curves.get(trial);
    if (!curve) this.curves.set(trial, (curve = []));
    curve[epoch - 1] = value;
    if (epoch <= this.warmup || this.completed.size < this.startupTrials) return false;
    const others: number[] = [];
    for (const t of this.completed) {
      const v = this.curves.get(t)?.[epoch - 1];
      if (t !== trial && v !== undefined && Number.isFinite(v)) others.push(v);
    }
    if (others.length === 0) return false;
    others.sort((a, b) => a - b);
    const mid = others.length / 2;
    const median = others.length % 2 ? others[Math.floor(mid)] : (others[mid - 1] + others[mid]) / 2;
    const bestSoFar = Math.min(...curve.slice(0, epoch).filter((v) => Number.isFinite(v)));
    return bestSoFar > median;
  }

  /** Marks `trial` as run to the end: from now on its curve sets the bar. */
  complete(trial: number): void {
    this.completed.add(trial);
  }
}
