/**
 * The training loop: seeded minibatch order and dropout masks, Adam, L2 on kernels, validation
 * after every epoch, early stopping on validation loss with the best weights restored. Written
 * by hand rather than with `model.fit` because fit shuffles with Math.random and tfjs's Dropout
 * layer reuses one mask per seed: neither is reproducible and random at once.
 */
import * as tf from '@tensorflow/tfjs';
import type { BuiltModel } from './architectures.ts';
import { createRng, dropoutMask, shuffledIndices, type Rng } from '../rng.ts';

export interface FitOptions {
  epochs: number;
  batchSize: number;
  lr: number;
  l2: number;
  dropout: number;
  /** Epochs without validation-loss improvement before stopping (0 = never stop early). */
  patience: number;
  seed: number;
}

/** Examples laid out back to back (n × product(example shape)) with class indices. */
export interface Examples {
  n: number;
  x: Float32Array;
  y: Int32Array;
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  acc: number;
  val_loss: number | null;
  val_acc: number | null;
}

export interface FitResult {
  history: EpochRecord[];
  epochsRun: number;
  /** 1-based epoch whose weights were kept. */
  bestEpoch: number;
  stoppedEarly: boolean;
  best: { val_loss: number | null; val_acc: number | null };
}

/**
 * A 'same'-padded, stride-1 Conv1D as unfold + matMul on the layer's own kernel and bias
 * variables. Mathematically the layer's conv1d, but its gradient is slices, concat and matMul,
 * which are fast on every backend, where tfjs-cpu's Conv2DBackpropFilter is a naive loop (~30×
 * slower). The saved model keeps the standard Conv1D layer for inference.
 */
function conv1dByMatMul(layer: tf.layers.Layer, x: tf.Tensor): tf.Tensor {
  const config = layer.getConfig() as { kernelSize: number[] | number; activation?: string };
  const k = Array.isArray(config.kernelSize) ? config.kernelSize[0] : config.kernelSize;
  const [kernel, bias] = layer.trainableWeights.map((w) => w.read());
  const [batch, steps, channels] = x.shape as [number, number, number];
  const filters = kernel.shape[2] as number;
  // 'same' padding as Keras does it: the extra frame (even k) goes after the sequence.
  const before = Math.floor((k - 1) / 2);
  const padded = tf.pad(x, [
    [0, 0],
    [before, k - 1 - before],
    [0, 0],
  ]);
  const windows = Array.from({ length: k }, (_, j) => tf.slice(padded, [0, j, 0], [batch, steps, channels]));
  const unfolded = tf.reshape(tf.concat(windows, 2), [batch * steps, k * channels]);
  let y = tf.matMul(unfolded, tf.reshape(kernel, [k * channels, filters]));
  if (bias) y = tf.add(y, bias);
  y = tf.reshape(y, [batch, steps, filters]);
  return config.activation === 'relu' ? tf.relu(y) : y;
}

function isPlainConv1d(layer: tf.layers.Layer): boolean {
  if (layer.getClassName() !== 'Conv1D') return false;
  const c = layer.getConfig() as {
    padding?: string;
    strides?: number[] | number;
    dilationRate?: number[] | number;
    activation?: string;
  };
  const one = (v: number[] | number | undefined) => v === undefined || (Array.isArray(v) ? v[0] : v) === 1;
  return (
    c.padding === 'same' &&
    one(c.strides) &&
    one(c.dilationRate) &&
    (c.activation === 'relu' || c.activation === 'linear')
  );
}

/** Forward pass as training runs it; with `masks`, each named layer's output is multiplied by its mask. */
export function forward(built: BuiltModel, x: tf.Tensor, masks?: Map<string, tf.Tensor>): tf.Tensor {
  let h = x;
  for (const layer of built.model.layers) {
    h = isPlainConv1d(layer) ? conv1dByMatMul(layer, h) : (layer.apply(h) as tf.Tensor);
    const m = masks?.get(layer.name);
    if (m) h = tf.mul(h, m);
  }
  return h;
}

/** Mean cross-entropy and accuracy of the model on `data` (inference mode, batched). */
function evaluate(
  built: BuiltModel,
  data: Examples,
  classes: number,
  batchSize: number,
): { loss: number; acc: number } {
  const size = data.x.length / Math.max(1, data.n);
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < data.n; start += batchSize) {
    const end = Math.min(data.n, start + batchSize);
    const [l, c] = tf.tidy(() => {
      const xb = tf.tensor(data.x.subarray(start * size, end * size), [end - start, ...built.inputShape]);
      const yb = tf.tensor1d(data.y.subarray(start, end), 'int32');
      const p = forward(built, xb);
      const loss = tf.metrics.categoricalCrossentropy(tf.oneHot(yb, classes), p).sum();
      const hits = tf.equal(tf.argMax(p, 1).toInt(), yb).sum();
      return [loss.dataSync()[0], hits.dataSync()[0]];
    });
    lossSum += l;
    correct += c;
  }
  return { loss: lossSum / Math.max(1, data.n), acc: correct / Math.max(1, data.n) };
}

function maskFor(built: BuiltModel, batch: number, rate: number, rng: Rng): Map<string, tf.Tensor> {
  const masks = new Map<string, tf.Tensor>();
  if (rate <= 0) return masks;
  for (const layer of built.model.layers) {
    if (!built.dropoutAfter.includes(layer.name)) continue;
    const shape = (layer.outputShape as (number | null)[]).slice(1) as number[];
    const size = shape.reduce((a, b) => a * b, 1);
    masks.set(layer.name, tf.tensor(dropoutMask(batch * size, rate, rng), [batch, ...shape]));
  }
  return masks;
}

/**
 * Trains `built.model` in place and leaves it holding the best weights.
 * `onEpoch` is called after each epoch (progress reporting); answering 'stop' ends training
 * (a tuner pruning the trial).
 */
export async function fitModel(
  built: BuiltModel,
  train: Examples,
  validation: Examples,
  classes: number,
  options: FitOptions,
  onEpoch?: (record: EpochRecord) => void | 'stop' | Promise<void | 'stop'>,
): Promise<FitResult> {
  const rng = createRng(options.seed ^ 0x5eed);
  const optimizer = tf.train.adam(options.lr);
  const variables = built.model.trainableWeights.map((w) => w.read() as tf.Variable);
  const kernels = variables.filter((v) => /kernel/.test(v.name));
  const xAll = tf.tensor(train.x, [train.n, ...built.inputShape]);
  const yAll = tf.tidy(() => tf.oneHot(tf.tensor1d(train.y, 'int32'), classes));
  const hasValidation = validation.n > 0;

  const history: EpochRecord[] = [];
  let best: tf.Tensor[] | undefined;
  let bestScore = Infinity;
  let bestEpoch = 0;
  let bestRecord: EpochRecord | undefined;
  let sinceBest = 0;
  let stoppedEarly = false;
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const order = shuffledIndices(train.n, rng);
      for (let start = 0; start < train.n; start += options.batchSize) {
        const idx = order.subarray(start, Math.min(train.n, start + options.batchSize));
        const masks = maskFor(built, idx.length, options.dropout, rng);
        tf.tidy(() => {
          const ids = tf.tensor1d(idx, 'int32');
          const xb = tf.gather(xAll, ids);
          const yb = tf.gather(yAll, ids);
          optimizer.minimize(
            () => {
              const p = forward(built, xb, masks);
              let loss = tf.metrics.categoricalCrossentropy(yb, p).mean();
              if (options.l2 > 0) {
                for (const k of kernels) loss = tf.add(loss, tf.mul(options.l2, tf.sum(tf.square(k))));
              }
              return loss as tf.Scalar;
            },
            false,
            variables,
          );
        });
        for (const m of masks.values()) m.dispose();
      }
      const tr = evaluate(built, { n: train.n, x: train.x, y: train.y }, classes, 256);
      const va = hasValidation ? evaluate(built, validation, classes, 256) : undefined;
      const record: EpochRecord = {
        epoch,
        loss: tr.loss,
        acc: tr.acc,
        val_loss: va?.loss ?? null,
        val_acc: va?.acc ?? null,
      };
      history.push(record);
      // A tuner's pruner may answer 'stop' (after the best-weights bookkeeping below).
      const decision = await onEpoch?.(record);
      const score = va ? va.loss : tr.loss;
      if (score < bestScore - 1e-7) {
        bestScore = score;
        bestEpoch = epoch;
        bestRecord = record;
        sinceBest = 0;
        best?.forEach((t) => t.dispose());
        best = built.model.getWeights().map((w) => w.clone());
      } else if (options.patience > 0 && ++sinceBest >= options.patience) {
        stoppedEarly = true;
        break;
      }
      if (decision === 'stop') {
        stoppedEarly = true;
        break;
      }
      // Yield to the event loop between epochs so progress output and aborts get through.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (best) built.model.setWeights(best);
  } finally {
    best?.forEach((t) => t.dispose());
    xAll.dispose();
    yAll.dispose();
    optimizer.dispose();
  }
  return {
    history,
    epochsRun: history.length,
    bestEpoch,
    stoppedEarly,
    best: { val_loss: bestRecord?.val_loss ?? null, val_acc: bestRecord?.val_acc ?? null },
  };
}
