/**
 * tune: lockstep's samplers against Optuna's TPE (Debian's python3-optuna, run by the system
 * /usr/bin/python3) on Branin, Hartmann-6 and a mixed params-like space, 40 trials × 20 seeds,
 * 8 random startup trials, driven the way runStudy drives a sampler (one rng stream per seed,
 * suggest → evaluate → append). Figures: median simple regret per sampler, one-sided
 * Mann-Whitney p-values (TPE < random; lockstep TPE < Optuna multivariate TPE), ms per proposal
 * for each side (lockstep in this process, Optuna in its own; same machine, same load).
 * The sampler's constants were chosen on other seeds (bench/tune/sweep.ts, seeds 1001–1200); the
 * goal is also checked on 20 held-out seeds (101–120) against Optuna's multivariate TPE, so the
 * headline does not rest on one lucky set of seeds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng } from '../lib/rng.ts';
import { randomSampler, tpeSampler, type CompletedTrial, type Sampler } from '../lib/tune/samplers.ts';
import { functions, type BenchFunction } from './tune/functions.ts';

const TRIALS = 40;
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);
const HOLDOUT = Array.from({ length: 20 }, (_, i) => i + 101);
const STARTUP = 8;
const PYTHON = '/usr/bin/python3';
const here = path.dirname(fileURLToPath(import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length / 2;
  return s.length % 2 ? s[Math.floor(m)] : (s[m - 1] + s[m]) / 2;
}

/** One-sided Mann-Whitney U test that `a` tends to be smaller than `b` (normal approximation, tie-corrected). */
export function mannWhitneyLess(a: number[], b: number[]): number {
  const all = [...a.map((v) => ({ v, g: 0 })), ...b.map((v) => ({ v, g: 1 }))].sort((x, y) => x.v - y.v);
  const ranks = new Array<number>(all.length);
  let tie = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    while (j + 1 < all.length && all[j + 1].v === all[i].v) j++;
    for (let k = i; k <= j; k++) ranks[k] = (i + j) / 2 + 1;
    const t = j - i + 1;
    tie += t ** 3 - t;
    i = j + 1;
  }
  const n1 = a.length;
  const n2 = b.length;
  const r1 = all.reduce((s, x, i) => s + (x.g === 0 ? ranks[i] : 0), 0);
  const u1 = r1 - (n1 * (n1 + 1)) / 2;
  const n = n1 + n2;
  const sd = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tie / (n * (n - 1))));
  const z = (u1 - (n1 * n2) / 2 + 0.5) / sd; // continuity correction towards the null
  return 0.5 * (1 + erf(z / Math.SQRT2));
}

function erf(x: number): number {
  // Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): enough for a p-value.
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-x * x);
  return x >= 0 ? y : -y;
}

function runLockstep(
  fn: BenchFunction,
  sampler: Sampler,
  seeds = SEEDS,
): { regret: number[]; msPerProposal: number; atBound: number } {
  const regret: number[] = [];
  let ms = 0;
  let proposals = 0;
  let atBound = 0;
  let floats = 0;
  for (const seed of seeds) {
    const rng = createRng(seed);
    const history: CompletedTrial[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const t0 = performance.now();
      const params = sampler.suggest(fn.space, history, rng);
      ms += performance.now() - t0;
      proposals++;
      for (const [k, d] of Object.entries(fn.space)) {
        if (d.type !== 'float') continue;
        floats++;
        if (params[k] === d.low || params[k] === d.high) atBound++;
      }
      history.push({ params, loss: fn.f(params) });
    }
    regret.push(Math.min(...history.map((h) => h.loss)) - fn.minimum);
  }
  return { regret, msPerProposal: ms / proposals, atBound: atBound / Math.max(1, floats) };
}

type OptunaResult = Record<string, Record<string, { best: number[]; ms_per_proposal: number }>>;

/** Optuna's results, or a one-line reason it could not run. */
function runOptuna(
  runs: { seeds: number[]; modes: string[] }[],
): { version: string; results: OptunaResult[] } | string {
  const hasOptuna = () => spawnSync(PYTHON, ['-c', 'import optuna'], { stdio: 'ignore' }).status === 0;
  if (!fs.existsSync(PYTHON))
    return `${PYTHON}: not found. Install python3 and python3-optuna (Debian) to compare with Optuna`;
  if (!hasOptuna()) {
    console.error('bench tune: installing python3-optuna (apt-get)');
    const opts = { stdio: 'inherit' as const, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } };
    const update = spawnSync('apt-get', ['update'], opts);
    const install =
      update.status === 0 ? spawnSync('apt-get', ['install', '-y', 'python3-optuna'], opts) : update;
    if (install.status !== 0 || !hasOptuna())
      return 'python3-optuna: could not be installed with apt-get (needs root and Debian). Install it to compare with Optuna';
  }
  const version = execFileSync(PYTHON, ['-c', 'import optuna; print(optuna.__version__)'], {
    encoding: 'utf8',
  }).trim();
  console.error(`bench tune: running Optuna ${version}`);
  const results = runs.map(({ seeds, modes }) => {
    const stdout = execFileSync(PYTHON, [path.join(here, 'tune', 'optuna_study.py')], {
      input: JSON.stringify({
        functions: Object.keys(functions),
        seeds,
        trials: TRIALS,
        startup: STARTUP,
        modes,
      }),
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    return JSON.parse(stdout) as OptunaResult;
  });
  return { version, results };
}

export default async function tuneBench(): Promise<Record<string, number | string>> {
  const figures: Record<string, number | string> = {
    trials: TRIALS,
    seeds: `${SEEDS[0]}-${SEEDS[SEEDS.length - 1]}`,
    holdout_seeds: `${HOLDOUT[0]}-${HOLDOUT[HOLDOUT.length - 1]}`,
    startup: STARTUP,
    load_average: os.loadavg()[0].toFixed(1),
  };
  const samplers: Record<string, Sampler> = {
    random: randomSampler,
    tpe: tpeSampler({ startup: STARTUP }),
    tpe_univariate: tpeSampler({ startup: STARTUP, multivariate: false }),
  };
  const ours: Record<string, Record<string, ReturnType<typeof runLockstep>>> = {};
  for (const [name, fn] of Object.entries(functions)) {
    ours[name] = {};
    for (const [s, sampler] of Object.entries(samplers)) {
      const r = runLockstep(fn, sampler);
      ours[name][s] = r;
      figures[`${name}.lockstep_${s}.median_regret`] = Number(median(r.regret).toPrecision(4));
      if (s !== 'random') {
        figures[`${name}.lockstep_${s}.ms_per_proposal`] = Number(r.msPerProposal.toPrecision(3));
        figures[`${name}.lockstep_${s}.share_at_bound`] = Number(r.atBound.toFixed(4));
      }
    }
    figures[`${name}.p_tpe_beats_random`] = Number(
      mannWhitneyLess(ours[name].tpe.regret, ours[name].random.regret).toPrecision(3),
    );
  }
  const held: Record<string, { tpe: number[]; random: number[] }> = {};
  for (const [name, fn] of Object.entries(functions)) {
    held[name] = {
      tpe: runLockstep(fn, samplers.tpe, HOLDOUT).regret,
      random: runLockstep(fn, samplers.random, HOLDOUT).regret,
    };
    figures[`${name}.holdout.lockstep_random.median_regret`] = Number(
      median(held[name].random).toPrecision(4),
    );
    figures[`${name}.holdout.lockstep_tpe.median_regret`] = Number(median(held[name].tpe).toPrecision(4));
    figures[`${name}.holdout.p_tpe_beats_random`] = Number(
      mannWhitneyLess(held[name].tpe, held[name].random).toPrecision(3),
    );
  }
  const optuna = process.env.BENCH_TUNE_NO_OPTUNA
    ? 'BENCH_TUNE_NO_OPTUNA set'
    : runOptuna([
        { seeds: SEEDS, modes: ['univariate', 'multivariate'] },
        { seeds: HOLDOUT, modes: ['multivariate'] },
      ]);
  if (typeof optuna === 'string') {
    console.error(`bench tune: Optuna skipped: ${optuna}`);
    figures.optuna = `skipped: ${optuna}`;
    return figures;
  }
  figures.optuna = optuna.version;
  let wins = 0;
  let heldWins = 0;
  for (const [name, fn] of Object.entries(functions)) {
    const o = optuna.results[1][name].multivariate;
    const regret = o.best.map((b) => b - fn.minimum);
    figures[`${name}.holdout.optuna_multivariate.median_regret`] = Number(median(regret).toPrecision(4));
    const ourMedian = median(held[name].tpe);
    figures[`${name}.holdout.tpe_median_at_most_optuna_multivariate`] =
      ourMedian <= median(regret) ? 'yes' : 'no';
    if (ourMedian <= median(regret) && mannWhitneyLess(held[name].tpe, held[name].random) < 0.05) heldWins++;
  }
  for (const [name, fn] of Object.entries(functions)) {
    for (const mode of ['univariate', 'multivariate']) {
      const o = optuna.results[0][name][mode];
      const regret = o.best.map((b) => b - fn.minimum);
      figures[`${name}.optuna_${mode}.median_regret`] = Number(median(regret).toPrecision(4));
      figures[`${name}.optuna_${mode}.ms_per_proposal`] = Number(o.ms_per_proposal.toPrecision(3));
      if (mode === 'multivariate') {
        const ourMedian = median(ours[name].tpe.regret);
        figures[`${name}.p_tpe_beats_optuna_multivariate`] = Number(
          mannWhitneyLess(ours[name].tpe.regret, regret).toPrecision(3),
        );
        figures[`${name}.tpe_median_at_most_optuna_multivariate`] =
          ourMedian <= median(regret) ? 'yes' : 'no';
        if (
          ourMedian <= median(regret) &&
          mannWhitneyLess(ours[name].tpe.regret, ours[name].random.regret) < 0.05
        )
          wins++;
      }
    }
  }
  figures.goal_met_on = `${wins} of ${Object.keys(functions).length}`;
  figures['holdout.goal_met_on'] = `${heldWins} of ${Object.keys(functions).length}`;
  return figures;
}
