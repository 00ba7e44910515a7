/**
 * Sampler-setting sweep for tuning TPE's constants away from the bench seeds:
 *   npx tsx bench/tune/sweep.ts '{"label": {<TpeOptions>}, ...}' [functions] [sets]
 * e.g. '{"default": {}, "optuna-3.1": {"sigma0": 0.2, "floor": "optuna"}}' branin,hartmann6 dev
 * Sets: dev (seeds 1001–1200, where settings are chosen), bench (1–20, bench/tune.ts's headline)
 * and holdout (101–120, also in bench/tune.ts). Prints, per function and set, the median simple
 * regret after 40 trials (8 random startup trials) and the mean log10 regret, which is steadier.
 * `gammaShare` (a number) stands for gamma = min(⌈share·n⌉, 25), since JSON cannot hold a function.
 */
import { createRng } from '../../lib/rng.ts';
import { tpeSampler, type CompletedTrial, type TpeOptions } from '../../lib/tune/samplers.ts';
import { functions } from './functions.ts';

const TRIALS = 40;
const STARTUP = 8;
const range = (n: number, from: number) => Array.from({ length: n }, (_, i) => i + from);
const SETS: Record<string, number[]> = {
  dev: range(200, 1001),
  bench: range(20, 1),
  holdout: range(20, 101),
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length / 2;
  return s.length % 2 ? s[Math.floor(m)] : (s[m - 1] + s[m]) / 2;
}

type SweepOptions = Partial<TpeOptions> & { gammaShare?: number };

const configs = JSON.parse(process.argv[2] ?? '{"default": {}}') as Record<string, SweepOptions>;
const names = (process.argv[3] ?? Object.keys(functions).join(',')).split(',');
const sets = (process.argv[4] ?? 'dev').split(',');

for (const [label, { gammaShare, ...options }] of Object.entries(configs)) {
  if (gammaShare !== undefined) options.gamma = (n) => Math.min(Math.ceil(gammaShare * n), 25);
  const sampler = tpeSampler({ startup: STARTUP, ...options });
  const cells: string[] = [];
  let ms = 0;
  let proposals = 0;
  for (const name of names) {
    const fn = functions[name];
    for (const set of sets) {
      const regret = SETS[set].map((seed) => {
        const rng = createRng(seed);
        const history: CompletedTrial[] = [];
        for (let i = 0; i < TRIALS; i++) {
          const t0 = performance.now();
          const params = sampler.suggest(fn.space, history, rng);
          ms += performance.now() - t0;
          proposals++;
          history.push({ params, loss: fn.f(params) });
        }
        return Math.min(...history.map((h) => h.loss)) - fn.minimum;
      });
      const meanLog = regret.reduce((a, r) => a + Math.log10(r + 1e-6), 0) / regret.length;
      cells.push(`${name}.${set} ${median(regret).toPrecision(3)} (log ${meanLog.toFixed(2)})`);
    }
  }
  console.log(`${label}: ${cells.join('  ')}  ${(ms / proposals).toFixed(2)} ms/proposal`);
}
