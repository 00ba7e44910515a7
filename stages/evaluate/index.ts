/**
 * evaluate: scores the trained model on the held-out speakers (test split): accuracy, macro and
 * per-class precision / recall / F1, MCC, one-vs-rest ROC-AUC, the confusion matrix, and three
 * plots (confusion matrix, learning curves, per-class F1) as Vega-Lite, SVG and PNG. Every metric
 * carries a speaker-clustered bootstrap interval and is also computed per slice
 * (`evaluate.slices`, shape in lib/slices/shape.ts); per-clip predictions go to
 * `predictions.json` so a later gate can pair a candidate with this model clip by clip.
 */
import fs from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StageContext, StageResult } from '../../lib/types.ts';
import { ConfigError } from '../../lib/errors.ts';
import { loadSplit, readFeaturesIndex } from '../../lib/ml/dataset.ts';
import { writeFileAtomic } from '../../lib/atomic.ts';
import { classificationReport, perClassScores } from '../../lib/ml/metrics.ts';
import { loadModelDir } from '../../lib/ml/model.ts';
import {
  confusionSpec,
  learningCurvesSpec,
  perClassF1Spec,
  type CurvePoint,
} from '../../lib/plots/templates.ts';
import { writePlot } from '../../lib/plots/render.ts';
import { normalizeFrames, normalizeSummary } from '../../lib/ml/transform.ts';
import { PATHS } from '../../lib/paths.ts';
import { evaluateParams, type Params } from '../../lib/params-schema.ts';
import { computeSlices, overallIntervals, sliceValues, type SliceSpec } from '../../lib/slices/compute.ts';
import type { BootstrapOptions } from '../../lib/slices/bootstrap.ts';
import { writePredictions } from '../../lib/slices/predictions.ts';
import { readTestClips } from './slices.ts';

export { evaluateStage } from './stage.ts';

export interface EvaluateOptions {
  modelDir: string;
  featuresDir: string;
  /** Directory with `history.json` from train (learning curves); optional. */
  trainDir?: string;
  evalDir: string;
  /** Split to score (default `test`). */
  split?: string;
  /** The ingest manifest, for slice attributes (default: none, slices by speaker only). */
  manifestFile?: string;
  /** Declared slices (default: params.yaml's defaults for `evaluate.slices`). */
  slices?: SliceSpec[];
  /** Bootstrap of the intervals (default: `evaluate.bootstrap` defaults). */
  bootstrap?: BootstrapOptions;
}

/** The file written beside metrics.json: every test clip's true and predicted class. */
export const PREDICTIONS_FILE = 'predictions.json';

/** Rounds for stable, readable diffs (metrics are compared at far coarser tolerances). */
function round(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

/** Scores the model and writes metrics.json, confusion.json and plots/ under `evalDir`. */
export async function evaluateModel(options: EvaluateOptions): Promise<Record<string, number>> {
  const defaults = evaluateParams.parse({});
  const split = options.split ?? 'test';
  const model = await loadModelDir(options.modelDir);
  const index = readFeaturesIndex(options.featuresDir);
  const data = loadSplit(options.featuresDir, split);
  if (data.n === 0) {
    throw new ConfigError(
      `${path.join(options.featuresDir, 'index.json')}: split "${split}" has no examples. Give ingest more speakers.`,
    );
  }
  // Split labels index the features' label list; map them onto the model's label order by name.
  const toModel = index.labels.map((l) => model.labels.indexOf(l));
  if (toModel.some((i) => i < 0)) {
    throw new ConfigError(
      `${path.join(options.modelDir, 'labels.json')}: model lacks labels of the features "${index.labels.join(',')}". Re-run train.`,
    );
  }
  const yTrue = Int32Array.from(data.y, (y) => toModel[y]);
  const x =
    model.card.input === 'frames'
      ? normalizeFrames(model.transform, data.frames)
      : normalizeSummary(model.transform, data.x);
  const k = model.labels.length;
  const probs = model.predictProbabilities(x, data.n);
  const yPred = new Int32Array(data.n);
  for (let i = 0; i < data.n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (probs[i * k + c] > probs[i * k + best]) best = c;
    yPred[i] = best;
  }
  const report = classificationReport(yTrue, yPred, model.labels, probs);
  const metrics = Object.fromEntries(Object.entries(report.metrics).map(([key, v]) => [key, round(v)]));
  const clips = readTestClips(options.manifestFile, data.paths, data.speakers);
  const predictions = { labels: model.labels, yTrue, yPred, probs };
  const bootstrap = options.bootstrap ?? defaults.bootstrap;
  const file = {
    ...metrics,
    intervals: overallIntervals(predictions, clips, bootstrap),
    bootstrap: { resamples: bootstrap.resamples, confidence: bootstrap.confidence, seed: bootstrap.seed },
    slices: computeSlices(predictions, clips, options.slices ?? defaults.slices, bootstrap),
  };

  await rm(options.evalDir, { recursive: true, force: true });
  await mkdir(options.evalDir, { recursive: true });
  await writeFileAtomic(path.join(options.evalDir, 'metrics.json'), JSON.stringify(file, null, 2) + '\n');
  const specs = options.slices ?? defaults.slices;
  await writePredictions(
    path.join(options.evalDir, PREDICTIONS_FILE),
    predictions,
    clips.map((c) => ({ ...c, slices: sliceValues(specs, c) })),
  );
  await writeFileAtomic(
    path.join(options.evalDir, 'confusion.json'),
    JSON.stringify({ labels: report.confusion.labels, matrix: report.confusion.matrix }) + '\n',
  );
  const plots = path.join(options.evalDir, 'plots');
  await writePlot(plots, 'confusion', confusionSpec(model.labels, report.confusion.matrix));
  await writePlot(
    plots,
    'per_class_f1',
    perClassF1Spec(model.labels, perClassScores(report.confusion.matrix).f1),
  );
  const historyFile = options.trainDir ? path.join(options.trainDir, 'history.json') : undefined;
  if (historyFile && fs.existsSync(historyFile)) {
    const history = JSON.parse(fs.readFileSync(historyFile, 'utf8')) as {
      epochs: CurvePoint[];
      best_epoch?: number;
    };
    await writePlot(plots, 'learning_curves', learningCurvesSpec(history.epochs, history.best_epoch));
  }
  model.model.dispose();
  return metrics;
}

/** The evaluate stage's body. */
export async function runEvaluateStage(ctx: StageContext): Promise<StageResult> {
  const p = evaluateParams.parse((ctx.params as Partial<Params>).evaluate ?? {});
  const m = await evaluateModel({
    manifestFile: ctx.abs(PATHS.manifest),
    slices: p.slices,
    bootstrap: p.bootstrap,
    modelDir: ctx.abs(PATHS.model),
    featuresDir: ctx.abs(PATHS.features),
    trainDir: ctx.abs(PATHS.train),
    evalDir: ctx.abs(PATHS.eval),
  });
  return {
    summary: `test accuracy ${m.accuracy.toFixed(3)}, macro F1 ${m.f1_macro.toFixed(3)}, MCC ${m.mcc.toFixed(3)}`,
  };
}
