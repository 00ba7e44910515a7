import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/ml/backend.ts';
import { predictValues } from '../../lib/ml/model.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('predictValues', () => {
  it('returns the outputs and leaves no tensors behind, also when the prediction throws', () => {
    const model = tf.sequential({
      layers: [tf.layers.dense({ inputShape: [4], units: 3, activation: 'softmax' })],
    });
    const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(predictValues(model, x, [2, 4])).toHaveLength(6);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) predictValues(model, x, [2, 4]);
    expect(() => predictValues(model, new Float32Array(5), [1, 5])).toThrow();
    expect(() => predictValues(model, new Float32Array(4), [2, 4])).toThrow();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('refuses a model of several outputs and disposes them all', () => {
    const input = tf.input({ shape: [4] });
    const model = tf.model({
      inputs: input,
      outputs: [
        tf.layers.dense({ units: 2 }).apply(input) as tf.SymbolicTensor,
        tf.layers.dense({ units: 3 }).apply(input) as tf.SymbolicTensor,
      ],
    });
    const before = tf.memory().numTensors;
    expect(() => predictValues(model, new Float32Array(4), [1, 4])).toThrow(
      'predict: the model has 2 outputs, expected one',
    );
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
