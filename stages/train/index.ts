/**
 * train: fits the `train.arch` network on `out/features` with TensorFlow.js and writes the model
 * directory (`out/model/`) and the learning curves and run facts (`out/train/`). The model
 * directory also carries validate's input schema (`schema.json`), so a served model checks its
 * inputs against the schema it was trained with.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StageContext, StageResult } from '../../lib/types.ts';
import { buildModel, usesFrames, type Architecture } from '../../lib/ml/architectures.ts';
import { initBackend } from '../../lib/ml/backend.ts';
import { loadSplit, readFeaturesIndex, type SplitData } from '../../lib/ml/dataset.ts';
import { writeFileAtomic } from '../../lib/atomic.ts';
import { saveModelDir, type ModelCard } from '../../lib/ml/model.ts';
import { normalizeFrames, normalizeSummary, readTransform, type Transform } from '../../lib/ml/transform.ts';
import { encodeManifest, sha256Hex } from '../../lib/store/manifest.ts';
import { ConfigError } from '../../lib/errors.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { INPUT_SCHEMA_FILE, readInputSchema, writeInputSchema } from '../../lib/validation/schema.ts';
import { fitModel, type Examples, type FitResult } from '../../lib/ml/fit.ts';

export { TRAIN_PARAM_KEYS, trainStage } from './stage.ts';

export interface TrainOutcome {
  modelId: string;
  backend: string;
  fit: FitResult;
  seconds: number;
}

/**
 * Hash of a features directory: the sha256 of its manifest object (entries `{path, sha256,
 * size}` sorted), the same way the store names directories.
 */
export function hashFeaturesDir(dir: string): string {
  const entries = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const bytes = fs.readFileSync(path.join(dir, e.name));
      return { path: e.name, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
    });
  return sha256Hex(encodeManifest(entries));
}

/** The network's inputs for one split: normalized summaries or normalized frame sequences. */
function examplesOf(split: SplitData, t: Transform, frames: boolean): Examples {
  return {
    n: split.n,
    x: frames ? normalizeFrames(t, split.frames) : normalizeSummary(t, split.x),
    y: split.y,
  };
}

export interface TrainOptions {
  featuresDir: string;
  modelDir: string;
  trainDir: string;
  params: Params['train'];
  /** validate's `schema.json` to ship inside the model directory (default: none is shipped). */
  inputSchema?: string;
  log?: (line: string) => void;
}

/** Trains and writes the model and train directories. The stage's body, callable directly. */
export async function trainModel(options: TrainOptions): Promise<TrainOutcome> {
  const p = options.params;
  const log = options.log ?? (() => undefined);
  const arch = p.arch as Architecture;
  const index = readFeaturesIndex(options.featuresDir);
  const transformPath = path.join(options.featuresDir, 'transform.json');
  const transform = readTransform(transformPath);
  if (!index.splits.train || index.splits.train.n === 0) {
    throw new ConfigError(
      `${path.join(options.featuresDir, 'index.json')}: no training examples "train". Add speakers or change ingest.train.`,
    );
  }
  // cnn1d needs no native convolution gradients: training computes its Conv1D layers as
  // unfold + matMul (see fit.ts), whose gradients the wasm backend has, so wasm serves both archs.
  const backend = await initBackend(p.backend);
  for (const why of backend.fallbacks) log(`train: backend fallback: ${why}`);
  log(`train: backend ${backend.name}, arch ${arch}`);

  const trainSplit = loadSplit(options.featuresDir, 'train');
  const valSplit = index.splits.validation ? loadSplit(options.featuresDir, 'validation') : undefined;
  const frames = usesFrames(arch);
  const built = buildModel({
    arch,
    summaryDim: index.summaryDim,
    frames: index.frames,
    frameDim: index.frameDim,
    classes: transform.labels.length,
    units: p.units,
    seed: p.seed,
  });
  const started = performance.now();
  const fit = await fitModel(
    built,
    examplesOf(trainSplit, transform, frames),
    valSplit
      ? examplesOf(valSplit, transform, frames)
      : { n: 0, x: new Float32Array(0), y: new Int32Array(0) },
    transform.labels.length,
    {
      epochs: p.epochs,
      batchSize: p.batch_size,
      lr: p.lr,
      l2: p.l2,
      dropout: p.dropout,
      patience: p.patience,
      seed: p.seed,
    },
    (r) =>
      log(
        `train: epoch ${r.epoch} loss ${r.loss.toFixed(4)} acc ${r.acc.toFixed(3)}` +
          (r.val_loss === null ? '' : ` val_loss ${r.val_loss.toFixed(4)} val_acc ${r.val_acc?.toFixed(3)}`),
      ),
  );
  const seconds = (performance.now() - started) / 1000;
  const bestRecord = fit.history[fit.bestEpoch - 1];
  const metrics: Record<string, number> = {};
  if (bestRecord) {
    metrics.loss = bestRecord.loss;
    metrics.accuracy = bestRecord.acc;
    if (bestRecord.val_loss !== null) metrics.val_loss = bestRecord.val_loss;
    if (bestRecord.val_acc !== null) metrics.val_accuracy = bestRecord.val_acc;
  }
  const card: ModelCard = {
    version: 1,
    arch,
    input: built.input,
    params: { ...p },
    dataHash: hashFeaturesDir(options.featuresDir),
    backend: backend.name,
    backendFallbacks: backend.fallbacks,
    metrics,
    epochsRun: fit.epochsRun,
    bestEpoch: fit.bestEpoch,
    labels: transform.labels,
  };
  await rm(options.modelDir, { recursive: true, force: true });
  await rm(options.trainDir, { recursive: true, force: true });
  const modelId = await saveModelDir(options.modelDir, { model: built.model, transformPath, card });
  if (options.inputSchema) await shipInputSchema(options.inputSchema, options.modelDir);
  built.model.dispose();
  await mkdir(options.trainDir, { recursive: true });
  await writeFileAtomic(
    path.join(options.trainDir, 'history.json'),
    JSON.stringify(
      { best_epoch: fit.bestEpoch, stopped_early: fit.stoppedEarly, epochs: fit.history },
      null,
      1,
    ) + '\n',
  );
  await writeFileAtomic(
    path.join(options.trainDir, 'metrics.json'),
    JSON.stringify(
      {
        backend: backend.name,
        epochs_run: fit.epochsRun,
        best_epoch: fit.bestEpoch,
        best_val_accuracy: fit.best.val_acc ?? metrics.accuracy ?? 0,
      },
      null,
      2,
    ) + '\n',
  );
  return { modelId, backend: backend.name, fit, seconds };
}

/** Copies validate's input schema into the model directory, checked on the way. */
async function shipInputSchema(file: string, modelDir: string): Promise<void> {
  const schema = readInputSchema(file);
  if (!schema) throw new ConfigError(`${file}: missing "${PATHS.inputSchema}". Re-run the validate stage.`);
  await writeInputSchema(path.join(modelDir, INPUT_SCHEMA_FILE), schema);
}

/** The train stage's body. */
export async function runTrainStage(ctx: StageContext, params: Params): Promise<StageResult> {
  const outcome = await trainModel({
    featuresDir: ctx.abs(PATHS.features),
    modelDir: ctx.abs(PATHS.model),
    trainDir: ctx.abs(PATHS.train),
    params: (ctx.params as Params).train,
    inputSchema: ctx.abs(PATHS.inputSchema),
    log: (line) => ctx.out.err(line),
  });
  const best = outcome.fit.best.val_acc;
  return {
    summary:
      `${params.train.arch} on ${outcome.backend}: ${outcome.fit.epochsRun} epochs` +
      (best === null ? '' : `, best val_acc ${best.toFixed(3)} (epoch ${outcome.fit.bestEpoch})`) +
      `, model ${outcome.modelId.slice(0, 12)}`,
    // Wall time is a fact about this run, not an output: it goes to the run record.
    facts: { train_seconds: Number(outcome.seconds.toFixed(3)), backend: outcome.backend },
  };
}
