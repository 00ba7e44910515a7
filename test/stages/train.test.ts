import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryOutput } from '../../lib/output.ts';
import type { StageContext } from '../../lib/types.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { trainStage } from '../../stages/train/index.ts';
import { forward } from '../../lib/ml/fit.ts';
import { buildModel } from '../../lib/ml/architectures.ts';
import { initBackend } from '../../lib/ml/backend.ts';
import * as tf from '@tensorflow/tfjs';
import { writeFeatureFixture } from '../ml/model-fixtures.ts';

/** validate's out/validate/schema.json, as train receives it. */
const INPUT_SCHEMA = {
  version: 1,
  data: {
    version: 1,
    labels: ['angry', 'sad'],
    sample_rates: [16000],
    channels: [1],
    bit_depths: ['16'],
    duration: { min: 0.4, max: 5.9 },
  },
  limits: { min_duration_s: 0.3, max_duration_s: 20, silence_dbfs: -60, max_clipping_ratio: 0.01 },
};

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'train-stage-'));
  writeFeatureFixture(path.join(root, PATHS.features));
  fs.mkdirSync(path.join(root, PATHS.validate), { recursive: true });
  fs.writeFileSync(path.join(root, PATHS.inputSchema), JSON.stringify(INPUT_SCHEMA));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function context(params: unknown): StageContext & { out: ReturnType<typeof memoryOutput> } {
  return {
    root,
    params: params as Record<string, unknown>,
    out: memoryOutput(),
    abs: (rel) => path.join(root, rel),
    signal: new AbortController().signal,
    inputs: {},
  };
}

const readJson = (rel: string) => JSON.parse(fs.readFileSync(path.join(root, rel), 'utf8'));

describe('train stage', () => {
  it('trainStage declares features and the input schema as deps and the model and train dirs as outs', () => {
    const stage = trainStage(paramsSchema.parse({}));
    expect(stage.deps).toEqual([PATHS.features, PATHS.inputSchema]);
    expect(stage.outs).toEqual([PATHS.model, PATHS.train]);
    expect(stage.params).toContain('train.seed');
    expect(stage.code).toEqual(['stages/train', 'lib/ml']);
  });

  it('trainStage run writes the model directory, learning curves and run metrics', async () => {
    const params = paramsSchema.parse({ train: { epochs: 6, patience: 0 } });
    const ctx = context(params);
    const result = await trainStage(params).run(ctx);
    expect(result?.summary).toMatch(
      /^mlp on (wasm|tensorflow): 6 epochs, best val_acc \d\.\d{3} \(epoch \d\), model [0-9a-f]{12}$/,
    );
    const files = fs.readdirSync(path.join(root, PATHS.model)).sort();
    expect(files).toEqual([
      'card.json',
      'labels.json',
      'model.json',
      'schema.json',
      'transform.json',
      'weights.bin',
    ]);
    // The model carries the schema it was trained with, for serving's input checks.
    expect(readJson(`${PATHS.model}/schema.json`)).toEqual(INPUT_SCHEMA);
    const card = readJson(`${PATHS.model}/card.json`);
    const metrics = readJson(`${PATHS.train}/metrics.json`);
    const history = readJson(`${PATHS.train}/history.json`);
    expect(card.backend).toBe(metrics.backend);
    expect(card.params).toEqual(params.train);
    expect(card.dataHash).toMatch(/^[0-9a-f]{64}$/);
    expect(metrics.epochs_run).toBe(6);
    expect(history.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const key of ['loss', 'acc', 'val_loss', 'val_acc'])
      expect(typeof history.epochs[0][key]).toBe('number');
    expect(metrics.best_val_accuracy).toBe(history.epochs[card.bestEpoch - 1].val_acc);
    expect(ctx.out.stderr.some((l) => /train: epoch 6 loss/.test(l))).toBe(true);
  });

  it('trainStage cnn1d trains on wasm (convolutions as unfold + matMul) and records the backend', async () => {
    const params = paramsSchema.parse({ train: { arch: 'cnn1d', epochs: 2, units: 8, backend: 'wasm' } });
    const ctx = context(params);
    await trainStage(params).run(ctx);
    const card = readJson(`${PATHS.model}/card.json`);
    expect(card.backend).toBe('wasm');
    expect(card.input).toBe('frames');
    expect(card.backendFallbacks).toEqual([]);
    expect(readJson(`${PATHS.train}/metrics.json`).backend).toBe('wasm');
    expect(ctx.out.stderr).toContain('train: backend wasm, arch cnn1d');
  });

  it('trainStage records the fallback when the requested backend is unavailable', async () => {
    const params = paramsSchema.parse({ train: { epochs: 1, backend: 'tensorflow' } });
    const ctx = context(params);
    await trainStage(params).run(ctx);
    const card = readJson(`${PATHS.model}/card.json`);
    if (card.backend !== 'tensorflow') {
      expect(card.backend).toBe('wasm');
      expect(card.backendFallbacks).toEqual(['tensorflow: tfjs-node did not load (package not installed)']);
      expect(ctx.out.stderr).toContain(
        'train: backend fallback: tensorflow: tfjs-node did not load (package not installed)',
      );
    }
  });

  it('trainStage names the features index when features are missing', async () => {
    const params = paramsSchema.parse({ train: { epochs: 1 } });
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'train-empty-'));
    const ctx = { ...context(params), root: empty, abs: (rel: string) => path.join(empty, rel) };
    await expect(trainStage(params).run(ctx)).rejects.toThrow(
      /out\/features\/index\.json: cannot read features index/,
    );
    fs.rmSync(empty, { recursive: true, force: true });
  });
});

describe('train forward pass', () => {
  it.each([
    { arch: 'cnn1d' as const, frames: 11 },
    { arch: 'cnn1d' as const, frames: 3 },
    { arch: 'mlp' as const, frames: 4 },
  ])('forward for $arch ($frames frames) equals the saved inference graph', async ({ arch, frames }) => {
    await initBackend('cpu');
    const built = buildModel({ arch, summaryDim: 5, frames, frameDim: 6, classes: 3, units: 8, seed: 1 });
    const x = tf.randomNormal([4, ...built.inputShape], 0, 1, 'float32', 3);
    const ours = tf.tidy(() => forward(built, x).dataSync());
    const keras = tf.tidy(() => (built.model.predict(x) as tf.Tensor).dataSync());
    expect(ours.length).toBe(12);
    for (let i = 0; i < ours.length; i++) expect(ours[i]).toBeCloseTo(keras[i], 5);
    x.dispose();
    built.model.dispose();
  });
});
