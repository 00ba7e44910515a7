/**
 * tune-prune: lockstep's median pruner against Optuna's MedianPruner on the per-epoch validation
 * curves of the demo model. Curves come from real trainings (demo pipeline shapes, default
 * tune.space, random params, 20 epochs, no early stopping); they are recorded once into
 * bench/tune/curves.json (BENCH_TUNE_RECORD=1 re-records) and replayed through both pruners in
 * the same 50 random trial orders, one trial at a time. Figures: share of epochs trained, trials
 * pruned, the best final value reached against the best of all trials (no pruning), and the
 * same with every method given half of all epochs (no pruning, our median pruner as `lockstep
 * tune` runs it, the same with 2 startup trials, asynchronous successive halving with η = 3 from
 * the warm-up epoch, Optuna's MedianPruner with the same warm-up).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRng, shuffledIndices } from '../lib/rng.ts';
import { EMOTIONS, featurizeParams, trainParams, tuneParams } from '../lib/params-schema.ts';
import { MedianPruner } from '../lib/tune/pruner.ts';
import { randomSampler } from '../lib/tune/samplers.ts';
import { runTrial, type TrainParams } from '../lib/tune/trial.ts';
import { PRUNE_STARTUP_TRIALS } from '../lib/tune/tuner.ts';
import { writeFeatureFixture } from '../test/ml/model-fixtures.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const curvesPath = path.join(here, 'tune', 'curves.json');
const TRIALS = 16;
const EPOCHS = 20;
const ORDERS = 50;
/** The same-budget comparison gives every pruner this share of all recorded epochs. */
const BUDGET_SHARE = 0.5;
const PYTHON = '/usr/bin/python3';

interface Recorded {
  objective: string;
  epochs: number;
  trials: {
    params: Record<string, string | number | boolean>;
    curve: number[];
    loss: number;
    seconds: number;
  }[];
}

async function record(): Promise<Recorded> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tune-prune-'));
  try {
    writeFeatureFixture(path.join(dir, 'features'), {
      config: featurizeParams.parse({}),
      labels: [...EMOTIONS],
      perClass: { train: 30, validation: 6, test: 6 },
      separation: 0.5,
    });
    const tune = tuneParams.parse({});
    const rng = createRng(1);
    const trials: Recorded['trials'] = [];
    for (let i = 0; i < TRIALS; i++) {
      const params = randomSampler.suggest(tune.space, [], rng);
      const train = { ...trainParams.parse({ epochs: EPOCHS, patience: 0 }) } as unknown as Record<
        string,
        unknown
      >;
      for (const [k, v] of Object.entries(params)) train[k.replace(/^train\./, '')] = v;
      const t0 = performance.now();
      const outcome = await runTrial({
        featuresDir: path.join(dir, 'features'),
        train: train as unknown as TrainParams,
        objective: tune.objective.metric,
        folds: 0,
        onEpoch: () => false,
      });
      const seconds = (performance.now() - t0) / 1000;
      console.error(
        `bench tune-prune: trial ${i} ${tune.objective.metric}=${outcome.value.toFixed(4)} (${seconds.toFixed(1)} s)`,
      );
      trials.push({ params, curve: outcome.curve, loss: -outcome.value, seconds });
    }
    return { objective: tune.objective.metric, epochs: EPOCHS, trials };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length / 2;
  return s.length % 2 ? s[Math.floor(m)] : (s[m - 1] + s[m]) / 2;
}

interface Replay {
  epochs: number;
  pruned: number;
  best: number;
}

interface Pruner {
  report(trial: number, epoch: number, value: number): boolean;
  complete?(trial: number): void;
}

/**
 * Asynchronous successive halving (Optuna's SuccessiveHalvingPruner): rungs at epochs
 * `minEpochs`·η^k; a trial reaching a rung goes on only if its best value so far is within the
 * best 1/η of all values recorded at that rung (the best one while fewer than η are there).
 */
class HalvingPruner {
  private readonly rungs = new Map<number, number[]>();
  private readonly best = new Map<number, number>();
  constructor(
    private readonly minEpochs = 1,
    private readonly eta = 3,
  ) {}

  report(trial: number, epoch: number, value: number): boolean {
    const b = Math.min(this.best.get(trial) ?? Infinity, Number.isFinite(value) ? value : Infinity);
    this.best.set(trial, b);
    const k = Math.log(epoch / this.minEpochs) / Math.log(this.eta);
    if (epoch < this.minEpochs || Math.abs(k - Math.round(k)) > 1e-9) return false;
    let rung = this.rungs.get(epoch);
    if (!rung) this.rungs.set(epoch, (rung = []));
    rung.push(b);
    rung.sort((x, y) => x - y);
    const idx = Math.max(0, Math.floor(rung.length / this.eta) - 1);
    return b > rung[idx];
  }
}

/** One trial at a time in `order` until every trial ran or `budget` epochs are spent. */
function replay(rec: Recorded, order: number[], pruner: Pruner, budget = Infinity): Replay {
  let epochs = 0;
  let pruned = 0;
  let best = Infinity;
  for (const i of order) {
    const { curve, loss } = rec.trials[i];
    let stopped = false;
    for (let e = 1; e <= curve.length; e++) {
      if (epochs >= budget) return { epochs, pruned, best };
      epochs++;
      if (pruner.report(i, e, curve[e - 1])) {
        stopped = true;
        break;
      }
    }
    if (stopped) pruned++;
    else {
      best = Math.min(best, loss);
      pruner.complete?.(i);
    }
  }
  return { epochs, pruned, best };
}

function summarize(prefix: string, replays: Replay[], rec: Recorded, out: Record<string, number | string>) {
  const total = rec.trials.reduce((s, t) => s + t.curve.length, 0);
  const bestAll = Math.min(...rec.trials.map((t) => t.loss));
  out[`${prefix}.epochs_trained_share`] = Number((median(replays.map((r) => r.epochs)) / total).toFixed(3));
  out[`${prefix}.trials_pruned_median`] = median(replays.map((r) => r.pruned));
  out[`${prefix}.best_regret_median`] = Number(median(replays.map((r) => r.best - bestAll)).toPrecision(3));
  out[`${prefix}.best_found_share`] = Number(
    (replays.filter((r) => r.best === bestAll).length / replays.length).toFixed(3),
  );
}

export default async function tunePruneBench(): Promise<Record<string, number | string>> {
  let rec: Recorded;
  if (!process.env.BENCH_TUNE_RECORD && fs.existsSync(curvesPath))
    rec = JSON.parse(fs.readFileSync(curvesPath, 'utf8'));
  else {
    rec = await record();
    fs.writeFileSync(curvesPath, JSON.stringify(rec, null, 1) + '\n');
  }
  const warmup = tuneParams.parse({}).pruning.warmup_epochs;
  const rng = createRng(5);
  const orders = Array.from({ length: ORDERS }, () => Array.from(shuffledIndices(rec.trials.length, rng)));
  const figures: Record<string, number | string> = {
    trials: rec.trials.length,
    epochs: rec.epochs,
    orders: ORDERS,
    warmup_epochs: warmup,
    objective: rec.objective,
    best_value_all_trials: -Math.min(...rec.trials.map((t) => t.loss)),
  };
  const total = rec.trials.reduce((s, t) => s + t.curve.length, 0);
  const budget = Math.round(BUDGET_SHARE * total);
  figures.same_budget_epochs = budget;
  const median = () => new MedianPruner(warmup, PRUNE_STARTUP_TRIALS);
  const median2 = () => new MedianPruner(warmup, 2);
  const halving = () => new HalvingPruner(warmup, 3);
  const none = { report: () => false };
  const run = (p: () => Pruner, b = Infinity) => orders.map((o) => replay(rec, o, p(), b));
  summarize('lockstep_median', run(median), rec, figures);
  summarize('lockstep_median_startup_2', run(median2), rec, figures);
  summarize('lockstep_halving', run(halving), rec, figures);
  summarize(
    'same_budget.no_pruning',
    run(() => none, budget),
    rec,
    figures,
  );
  summarize('same_budget.lockstep_median', run(median, budget), rec, figures);
  summarize('same_budget.lockstep_halving', run(halving, budget), rec, figures);
  const ok =
    fs.existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import optuna'], { stdio: 'ignore' }).status === 0;
  if (!ok) {
    figures.optuna =
      'skipped: python3-optuna not importable by /usr/bin/python3 (run npm run bench -- tune to install it)';
    return figures;
  }
  // Optuna's steps are 0-based; n_warmup_steps = warmup prunes from the same epoch as ours.
  const stdout = execFileSync(PYTHON, [path.join(here, 'tune', 'optuna_prune.py')], {
    input: JSON.stringify({
      curves: rec.trials.map((t) => t.curve),
      values: rec.trials.map((t) => t.loss),
      orders,
      warmup,
      budget,
    }),
    encoding: 'utf8',
  });
  const optuna = JSON.parse(stdout) as { all: Replay[]; same_budget: Replay[] };
  summarize('optuna_median', optuna.all, rec, figures);
  summarize('same_budget.optuna_median', optuna.same_budget, rec, figures);
  return figures;
}
