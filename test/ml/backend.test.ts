import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/ml/backend.ts';

describe('backend', () => {
  it('initBackend auto takes tfjs-node when it loads, else records why and initialises wasm', async () => {
    const choice = await initBackend('auto');
    expect(tf.getBackend()).toBe(choice.name);
    if (choice.name !== 'tensorflow') {
      // Here tfjs-node's native binary is missing: the failed import is recorded, wasm works.
      expect(choice.fallbacks[0]).toMatch(/^tensorflow: tfjs-node did not load \(/);
      // Recorded in the model card: no machine-specific paths.
      expect(choice.fallbacks[0]).not.toMatch(/\/(tmp|work|home)\//);
      expect(choice.name).toBe('wasm');
    }
    const y = tf.tidy(() => tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).dataSync());
    expect(Array.from(y)).toEqual([3, 3, 3, 3]);
  });

  it('initBackend for native convolution gradients skips wasm and says why', async () => {
    const choice = await initBackend('wasm', { needsConvGradients: true });
    expect(choice).toEqual({
      name: 'cpu',
      requested: 'wasm',
      fallbacks: ['wasm: no convolution gradient kernels (Conv2DBackpropFilter)'],
    });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('initBackend cpu uses cpu with no fallbacks', async () => {
    expect(await initBackend('cpu')).toEqual({ name: 'cpu', requested: 'cpu', fallbacks: [] });
    expect(tf.getBackend()).toBe('cpu');
  });
});
