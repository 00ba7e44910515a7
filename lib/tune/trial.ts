/**
 * One tuning trial: train the model with a params assignment on the featurized data and score
 * it on held-out speakers: the validation split, or speaker-grouped k-fold cross-validation over
 * the training and validation speakers (no speaker in two folds). The test split is never
 * used, so tuning cannot overfit the numbers the gate and the README report.
 */
import { buildModel, usesFrames, type Architecture } from '../ml/architectures.ts';
import { initBackend } from '../ml/backend.ts';
import { loadSplit, readFeaturesIndex, type SplitData } from '../ml/dataset.ts';
import { classificationReport } from '../ml/metrics.ts';
import { normalizeFrames, normalizeSummary, readTransform, type Transform } from '../ml/transform.ts';
import { fitModel, type EpochRecord, type Examples } from '../ml/fit.ts';
import { predictValues } from '../ml/model.ts';
import path from 'node:path';

/** Train params a trial uses (the `train` section of params.yaml with the assignment applied). */
export interface TrainParams {
  arch: string;
  epochs: number;
  batch_size: number;
  lr: number;
  units: number;
  dropout: number;
  l2: number;
  patience: number;
  seed: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
}

export type ObjectiveMetric = 'val_f1_macro' | 'val_accuracy' | 'val_loss';

export interface TrialInput {
  featuresDir: string;
  train: TrainParams;
  objective: ObjectiveMetric;
  /** 0 or 1: the validation split; k >= 2: speaker-grouped k-fold over train + validation. */
  folds: number;
  /** Called after every epoch of the first fold with the loss-oriented pruning value. */
  onEpoch?: (epoch: number, value: number) => Promise<boolean> | boolean;
}

export interface TrialOutcome {
  /** Objective value (in the metric's own direction). */
  value: number;
  metrics: Record<string, number>;
  pruned: boolean;
  epochs: number;
  /** Per-epoch pruning values (loss-oriented) of the first fold. */
  curve: number[];
}

function examples(rows: number[], data: SplitData, t: Transform, frames: boolean): Examples {
  const size = frames ? data.t * data.f : data.d;
  const raw = new Float32Array(rows.length * size);
  const y = new Int32Array(rows.length);
  rows.forEach((r, i) => {
    raw.set((frames ? data.frames : data.x).subarray(r * size, (r + 1) * size), i * size);
    y[i] = data.y[r];
  });
  return { n: rows.length, x: frames ? normalizeFrames(t, raw) : normalizeSummary(t, raw), y };
}

/** Concatenates splits (rows keep their speakers). */
function concat(a: SplitData, b: SplitData | undefined): SplitData {
  if (!b) return a;
  const cat = (x: Float32Array, y: Float32Array) => {
    const out = new Float32Array(x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  };
  const y = new Int32Array(a.n + b.n);
  y.set(a.y);
  y.set(b.y, a.n);
  return {
    ...a,
    n: a.n + b.n,
    x: cat(a.x, b.x),
    frames: cat(a.frames, b.frames),
    y,
    paths: [...a.paths, ...b.paths],
    speakers: [...a.speakers, ...b.speakers],
  };
}

/** Speaker-grouped folds: speakers sorted, dealt round-robin into k folds (deterministic). */
export function speakerFolds(speakers: string[], k: number): number[][] {
  const unique = [...new Set(speakers)].sort();
  if (unique.length < k)
    throw new Error(`cross-validation needs at least ${k} speakers, found ${unique.length}`);
  const foldOf = new Map(unique.map((s, i) => [s, i % k]));
  const folds: number[][] = Array.from({ length: k }, () => []);
  speakers.forEach((s, row) => folds[foldOf.get(s)!].push(row));
  return folds;
}

const lossOriented = (objective: ObjectiveMetric, r: EpochRecord): number =>
  objective === 'val_loss' ? (r.val_loss ?? r.loss) : -(r.val_acc ?? r.acc);

/** Runs one trial. */
export async function runTrial(input: TrialInput): Promise<TrialOutcome> {
  const p = input.train;
  const arch = p.arch as Architecture;
  await initBackend(p.backend, { needsConvGradients: usesFrames(arch) });
  const index = readFeaturesIndex(input.featuresDir);
  const transform = readTransform(path.join(input.featuresDir, 'transform.json'));
  const frames = usesFrames(arch);
  const trainSplit = loadSplit(input.featuresDir, 'train');
  const valSplit = index.splits.validation ? loadSplit(input.featuresDir, 'validation') : undefined;
  const plans: { data: SplitData; train: number[]; val: number[] }[] = [];
  if (input.folds >= 2) {
    const pool = concat(trainSplit, valSplit);
    const folds = speakerFolds(pool.speakers, input.folds);
    folds.forEach((val, i) => plans.push({ data: pool, train: folds.filter((_, j) => j !== i).flat(), val }));
  } else {
    if (!valSplit || valSplit.n === 0)
      throw new Error('tuning needs a validation split (or tune.cv_folds >= 2)');
    const pool = concat(trainSplit, valSplit);
    plans.push({
      data: pool,
      train: Array.from({ length: trainSplit.n }, (_, i) => i),
      val: Array.from({ length: valSplit.n }, (_, i) => trainSplit.n + i),
    });
  }
  const classes = transform.labels.length;
  const sums: Record<string, number> = {};
  let pruned = false;
  let epochs = 0;
  const curve: number[] = [];
  for (let f = 0; f < plans.length && !pruned; f++) {
    const plan = plans[f];
    const built = buildModel({
      arch,
      summaryDim: index.summaryDim,
      frames: index.frames,
      frameDim: index.frameDim,
      classes,
      units: p.units,
      seed: p.seed,
    });
    const val = examples(plan.val, plan.data, transform, frames);
    const fit = await fitModel(
      built,
      examples(plan.train, plan.data, transform, frames),
      val,
      classes,
      {
        epochs: p.epochs,
        batchSize: p.batch_size,
        lr: p.lr,
        l2: p.l2,
        dropout: p.dropout,
        patience: p.patience,
        seed: p.seed,
      },
      async (r) => {
        if (f !== 0) return;
        const v = lossOriented(input.objective, r);
        curve.push(v);
        if (input.onEpoch && (await input.onEpoch(r.epoch, v))) {
          pruned = true;
          return 'stop';
        }
      },
    );
    epochs += fit.epochsRun;
    const probs = predictValues(built.model, val.x, [val.n, ...built.inputShape]);
    built.model.dispose();
    const yPred = new Int32Array(val.n);
    for (let i = 0; i < val.n; i++) {
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
      yPred[i] = best;
    }
    const report = classificationReport(val.y, yPred, transform.labels);
    const m: Record<string, number> = {
      val_accuracy: report.metrics.accuracy,
      val_f1_macro: report.metrics.f1_macro,
      val_loss: fit.best.val_loss ?? NaN,
    };
    for (const [k, v] of Object.entries(m)) sums[k] = (sums[k] ?? 0) + v;
  }
  const done = pruned ? 1 : plans.length;
  const metrics = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / done]));
  return { value: metrics[input.objective], metrics, pruned, epochs, curve };
}
