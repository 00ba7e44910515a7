/**
 * The model directory (`out/model/`) and the one way to load it. A model directory holds
 * `model.json` + `weights.bin` (TensorFlow.js layers format, written through our filesystem
 * IOHandler), `transform.json` (the featurize transform, copied), `labels.json` and `card.json`
 * (params, data hash, backend, validation metrics). Serving, evaluate and batch prediction all
 * load models with `loadModelDir`, so they share the training code path for features.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { DecodedAudio } from '../audio/wav.ts';
import { ConfigError } from '../errors.ts';
import { initBackend, type BackendPreference } from './backend.ts';
import { fileSystemHandler, WEIGHTS_BIN } from './io-handler.ts';
import { writeFileAtomic } from '../atomic.ts';
import { readTransform, transformAudio, type Transform } from './transform.ts';

export const TRANSFORM_JSON = 'transform.json';
export const LABELS_JSON = 'labels.json';
export const CARD_JSON = 'card.json';

/** `card.json`: what a model is, how it was made and how well it did on validation. */
export interface ModelCard {
  version: 1;
  arch: string;
  /** What the network consumes: normalized summary vectors or normalized frame sequences. */
  input: 'summary' | 'frames';
  /** The `train` params used. */
  params: Record<string, unknown>;
  /** Hash of the training data (the features directory or the manifest). */
  dataHash: string;
  /** TensorFlow.js backend that trained the model, and why preferred ones were skipped. */
  backend: string;
  backendFallbacks: string[];
  /** Validation metrics of the restored (best) weights: `val_loss`, `val_accuracy`, ... */
  metrics: Record<string, number>;
  epochsRun: number;
  bestEpoch: number;
  labels: string[];
}

export interface Prediction {
  label: string;
  scores: Record<string, number>;
  /** Raw (unnormalized) summary features, for logs. */
  summary: number[];
}

export interface LoadedModel {
  /** sha256 of `weights.bin`: the model's identity. */
  id: string;
  transform: Transform;
  labels: string[];
  card: ModelCard;
  /** The underlying TensorFlow.js model (inference graph). */
  model: tf.LayersModel;
  /** decode → downmix → resample → frame → features → summary → scale → predict. */
  predictAudio(audio: DecodedAudio): Prediction;
  /** Predicts from one normalized summary vector (summary models only). */
  predictSummary(normalized: Float32Array): Prediction;
  /** Predicts several clips at once. */
  predictBatch(audios: DecodedAudio[]): Prediction[];
  /** Class probabilities (n×C, row-major) for `n` normalized inputs laid out back to back. */
  predictProbabilities(normalized: Float32Array, n: number): Float32Array;
}

export interface SaveModelInput {
  model: tf.LayersModel;
  /** Path of the transform.json to copy next to the model. */
  transformPath: string;
  card: ModelCard;
}

/** Writes a model directory; returns the model id (sha256 of the weights). */
export async function saveModelDir(dir: string, input: SaveModelInput): Promise<string> {
  await mkdir(dir, { recursive: true });
  await input.model.save(fileSystemHandler(dir));
  await copyFile(input.transformPath, path.join(dir, TRANSFORM_JSON));
  await writeFileAtomic(path.join(dir, LABELS_JSON), JSON.stringify(input.card.labels) + '\n');
  await writeFileAtomic(path.join(dir, CARD_JSON), JSON.stringify(input.card, null, 2) + '\n');
  return hashFile(path.join(dir, WEIGHTS_BIN));
}

/** sha256 (hex) of a file's bytes. */
export async function hashFile(file: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(file))
    .digest('hex');
}

async function readJson<T>(file: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    throw new ConfigError(
      `${file}: unreadable (${(err as Error).message.split('\n')[0]}). Re-run the train stage.`,
      { cause: err },
    );
  }
}

/**
 * The model's output values for `x` of `shape`. The tidy returns the tensor and its values are
 * read after it: a tidy that returns the typed array has tfjs walk it element by element looking
 * for tensors, and the numbers it meets deoptimize that walk again and again (a recompile every
 * 50-100 ms in a busy server).
 */
export function predictValues(model: tf.LayersModel, x: Float32Array, shape: number[]): Float32Array {
  const y = tf.tidy(() => model.predict(tf.tensor(x, shape)));
  if (!(y instanceof tf.Tensor)) {
    // A model of several outputs: the tidy kept every output, which would outlive the error.
    tf.dispose(y);
    throw new RangeError(`predict: the model has ${y.length} outputs, expected one`);
  }
  try {
    return y.dataSync() as Float32Array;
  } finally {
    y.dispose();
  }
}

export interface LoadModelOptions {
  /**
   * Backend to activate before loading. Default: keep the active backend if one is set,
   * else pick one as training does (tfjs-node → wasm → cpu).
   */
  backend?: BackendPreference;
}

/**
 * Loads a model directory written by the train stage.
 * @throws ConfigError when a file is missing or malformed, or labels disagree with the transform.
 */
export async function loadModelDir(dir: string, options: LoadModelOptions = {}): Promise<LoadedModel> {
  if (options.backend) await initBackend(options.backend);
  else if (!tf.engine().backendName) await initBackend('auto');
  const card = await readJson<ModelCard>(path.join(dir, CARD_JSON));
  const labels = await readJson<string[]>(path.join(dir, LABELS_JSON));
  const transform = readTransform(path.join(dir, TRANSFORM_JSON));
  if (!Array.isArray(labels) || labels.join('\n') !== transform.labels.join('\n')) {
    throw new ConfigError(
      `${path.join(dir, LABELS_JSON)}: labels do not match transform.json "${String(labels)}". Re-run the train stage.`,
    );
  }
  const model = await tf.loadLayersModel(fileSystemHandler(dir));
  const id = await hashFile(path.join(dir, WEIGHTS_BIN));
  const input = card.input ?? 'summary';
  const exampleShape = (model.inputs[0].shape.slice(1) as number[]).map((d) => d ?? 1);
  const exampleSize = exampleShape.reduce((a, b) => a * b, 1);
  const classes = labels.length;

  const probabilities = (normalized: Float32Array, n: number): Float32Array => {
    if (normalized.length !== n * exampleSize) {
      throw new RangeError(`predict: expected ${n}×${exampleSize} values, got ${normalized.length}`);
    }
    if (n === 0) return new Float32Array(0);
    return predictValues(model, normalized, [n, ...exampleShape]);
  };
  const toPrediction = (probs: Float32Array, offset: number, raw: Float32Array): Prediction => {
    const scores: Record<string, number> = {};
    let best = 0;
    for (let c = 0; c < classes; c++) {
      scores[labels[c]] = probs[offset + c];
      if (probs[offset + c] > probs[offset + best]) best = c;
    }
    return { label: labels[best], scores, summary: Array.from(raw) };
  };
  const featuresOf = (audio: DecodedAudio): { input: Float32Array; raw: Float32Array } => {
    const t = transformAudio(transform, audio);
    return { input: input === 'frames' ? t.frames : t.summary, raw: t.raw };
  };

  return {
    id,
    transform,
    labels,
    card,
    model,
    predictAudio(audio) {
      const f = featuresOf(audio);
      return toPrediction(probabilities(f.input, 1), 0, f.raw);
    },
    predictSummary(normalized) {
      if (input !== 'summary') {
        throw new ConfigError(
          `${path.join(dir, CARD_JSON)}: model input is "${input}", not summary vectors. Send audio instead.`,
        );
      }
      // The raw features for the log are the inverse of the transform's scaling.
      const raw = normalized.map((v, i) => v * transform.std[i] + transform.mean[i]);
      return toPrediction(probabilities(normalized, 1), 0, raw);
    },
    predictBatch(audios) {
      const feats = audios.map(featuresOf);
      const all = new Float32Array(feats.length * exampleSize);
      feats.forEach((f, i) => all.set(f.input, i * exampleSize));
      const probs = probabilities(all, feats.length);
      return feats.map((f, i) => toPrediction(probs, i * classes, f.raw));
    },
    predictProbabilities: probabilities,
  };
}
