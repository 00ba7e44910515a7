/**
 * Parzen estimators for the TPE sampler (see samplers.ts for how they are used): a mixture of
 * one kernel per observation plus a prior kernel, truncated Gaussians on each numeric
 * dimension's [0, 1] coordinate (an int scored by its cell's mass) and smoothed one-hot rows on
 * choices, with the truncated-normal sampling and tail-accurate normal mass they need.
 */
import type { Rng } from '../rng.ts';
import { fromUnit, toUnit, unitCell, type Assignment, type Dimension, type SearchSpace } from './space.ts';

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
