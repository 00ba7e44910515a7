/**
 * Samplers: random, and a Tree-structured Parzen Estimator in the style of Optuna's default
 * (independent per dimension): completed trials are split into the best γ fraction and the
 * rest; each side gets a Parzen density (Gaussian kernels in the unit coordinate, or smoothed
 * counts for choices); candidates drawn from the good density are ranked by l(x)/g(x).
 * Everything is seeded: the same trials and seed give the same suggestion.
 */
import type { Rng } from '../rng.ts';
import { fromUnit, toUnit, type Assignment, type Dimension, type SearchSpace } from './space.ts';

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
  const u = Math.max(1e-12, rng.next());
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
}

/** Parzen density over [0, 1]: kernels at `points` plus a flat prior, bandwidth by Scott's rule. */
function parzen(points: number[]): { pdf(x: number): number; sample(rng: Rng): number } {
  const n = points.length;
  const bw = Math.max(0.05, Math.min(0.5, 1.06 * 0.3 * Math.pow(Math.max(1, n), -0.2)));
  const prior = 1 / (n + 1);
  return {
    pdf(x) {
      let s = prior; // uniform component keeps the density positive everywhere
      for (const p of points) s += Math.exp(-0.5 * ((x - p) / bw) ** 2) / (bw * Math.sqrt(2 * Math.PI));
      return s / (n + 1);
    },
    sample(rng) {
      const i = Math.floor(rng.next() * (n + 1));
      if (i >= n) return rng.next();
      return Math.min(1, Math.max(0, points[i] + bw * gaussian(rng)));
    },
  };
}

export interface TpeOptions {
  /** Random trials before TPE starts (default 5). */
  startup: number;
  /** Fraction of completed trials counted as good (default 0.25). */
  gamma: number;
  /** Candidates drawn from the good density per dimension (default 24). */
  candidates: number;
}

export function tpeSampler(options: Partial<TpeOptions> = {}): Sampler {
  const o: TpeOptions = { startup: 5, gamma: 0.25, candidates: 24, ...options };
  return {
    name: 'tpe',
    suggest(space, history, rng) {
      const done = history.filter((t) => Number.isFinite(t.loss));
      if (done.length < o.startup) return randomSampler.suggest(space, history, rng);
      const sorted = [...done].sort((a, b) => a.loss - b.loss);
      const nGood = Math.max(1, Math.ceil(o.gamma * sorted.length));
      const good = sorted.slice(0, nGood);
      const bad = sorted.slice(nGood);
      const out: Assignment = {};
      for (const [key, d] of Object.entries(space)) {
        if (d.type === 'choice') {
          const weight = (set: CompletedTrial[], v: unknown) =>
            (set.filter((t) => t.params[key] === v).length + 1) / (set.length + d.values.length);
          let best = d.values[0];
          let bestScore = -Infinity;
          for (let c = 0; c < o.candidates; c++) {
            // Draw from the good distribution, score by l/g.
            const r = rng.next();
            let acc = 0;
            let pick = d.values[d.values.length - 1];
            for (const v of d.values) {
              acc += weight(good, v);
              if (r <= acc) {
                pick = v;
                break;
              }
            }
            const score = weight(good, pick) / weight(bad, pick);
            if (score > bestScore) {
              bestScore = score;
              best = pick;
            }
          }
          out[key] = best;
          continue;
        }
        const unit = (set: CompletedTrial[]) => set.map((t) => toUnit(d, Number(t.params[key])));
        const l = parzen(unit(good));
        const g = parzen(unit(bad));
        let bestU = 0.5;
        let bestScore = -Infinity;
        for (let c = 0; c < o.candidates; c++) {
          const u = l.sample(rng);
          const score = Math.log(l.pdf(u)) - Math.log(g.pdf(u));
          if (score > bestScore) {
            bestScore = score;
            bestU = u;
          }
        }
        out[key] = fromUnit(d, bestU);
      }
      return out;
    },
  };
}

/**
 * Median pruning (Optuna's MedianPruner): after `warmup` epochs, a trial whose best value so
 * far is worse than the median of the other trials' values at the same epoch stops, once at
 * least `minTrials` other trials reported that epoch. Values are losses (lower is better).
 */
export class MedianPruner {
  private readonly curves = new Map<number, number[]>();
  constructor(
    private readonly warmup = 3,
    private readonly minTrials = 2,
  ) {}

  /** Records `value` for `trial` at `epoch` (1-based) and says whether to stop it. */
  report(trial: number, epoch: number, value: number): boolean {
    let curve = this.curves.get(trial);
    if (!curve) this.curves.set(trial, (curve = []));
    curve[epoch - 1] = value;
    if (epoch <= this.warmup) return false;
    const others: number[] = [];
    for (const [t, c] of this.curves) {
      if (t === trial || c.length < epoch) continue;
      others.push(Math.min(...c.slice(0, epoch).filter((v) => Number.isFinite(v))));
    }
    if (others.length < this.minTrials) return false;
    others.sort((a, b) => a - b);
    const mid = others.length / 2;
    const median = others.length % 2 ? others[Math.floor(mid)] : (others[mid - 1] + others[mid]) / 2;
    const bestSoFar = Math.min(...curve.slice(0, epoch).filter((v) => Number.isFinite(v)));
    return bestSoFar > median;
  }
}
