/**
 * Model architectures selectable with `train.arch`. Layers get explicit names and seeded
 * initializers so the saved topology and the initial weights are the same on every run.
 * Dropout is not a layer here: training applies seeded inverted-dropout masks after the layers
 * named in `dropoutAfter` (tfjs's Dropout layer reuses one mask per seed), and the saved model
 * is the plain inference graph.
 */
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../rng.ts';

export type Architecture = 'mlp' | 'cnn1d';

export interface ArchitectureOptions {
  arch: Architecture;
  /** Summary dimension D (mlp) — or frames T and frame features F (cnn1d). */
  summaryDim: number;
  frames: number;
  frameDim: number;
  classes: number;
  /** Width of the hidden dense layer. */
  units: number;
  seed: number;
}

export interface BuiltModel {
  model: tf.Sequential;
  /** Names of the layers whose outputs get a dropout mask during training. */
  dropoutAfter: string[];
  /** What the model consumes: normalized summary vectors or normalized frame sequences. */
  input: 'summary' | 'frames';
  /** Shape of one example (without the batch dimension). */
  inputShape: number[];
}

/** True for architectures that read frame sequences instead of summary vectors. */
export function usesFrames(arch: Architecture): boolean {
  return arch === 'cnn1d';
}

/** Builds an untrained model for `options`. */
export function buildModel(options: ArchitectureOptions): BuiltModel {
  const rng = createRng(options.seed);
  const init = (): ReturnType<typeof tf.initializers.glorotUniform> =>
    tf.initializers.glorotUniform({ seed: rng.nextSeed() });
  const model = tf.sequential({ name: `${options.arch}_model` });
  const { units, classes } = options;
  if (options.arch === 'mlp') {
    const inputShape = [options.summaryDim];
    model.add(
      tf.layers.dense({ name: 'hidden_1', inputShape, units, activation: 'relu', kernelInitializer: init() }),
    );
    model.add(
      tf.layers.dense({
        name: 'hidden_2',
        units: Math.max(4, units >> 1),
        activation: 'relu',
        kernelInitializer: init(),
      }),
    );
    model.add(
      tf.layers.dense({ name: 'output', units: classes, activation: 'softmax', kernelInitializer: init() }),
    );
    return { model, dropoutAfter: ['hidden_1', 'hidden_2'], input: 'summary', inputShape };
  }
  const inputShape = [options.frames, options.frameDim];
  const filters = Math.max(8, units >> 1);
  model.add(
    tf.layers.conv1d({
      name: 'conv_1',
      inputShape,
      filters,
      kernelSize: 5,
      activation: 'relu',
      padding: 'same',
      kernelInitializer: init(),
    }),
  );
  model.add(tf.layers.maxPooling1d({ name: 'pool_1', poolSize: 2 }));
  model.add(
    tf.layers.conv1d({
      name: 'conv_2',
      filters: units,
      kernelSize: 3,
      activation: 'relu',
      padding: 'same',
      kernelInitializer: init(),
    }),
  );
  model.add(tf.layers.globalAveragePooling1d({ name: 'pool_global' }));
  model.add(tf.layers.dense({ name: 'hidden_1', units, activation: 'relu', kernelInitializer: init() }));
  model.add(
    tf.layers.dense({ name: 'output', units: classes, activation: 'softmax', kernelInitializer: init() }),
  );
  return { model, dropoutAfter: ['pool_global', 'hidden_1'], input: 'frames', inputShape };
}
