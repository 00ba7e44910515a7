import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildModel } from '../../lib/ml/architectures.ts';
import { initBackend } from '../../lib/ml/backend.ts';
import { loadSplit } from '../../lib/ml/dataset.ts';
import { loadModelDir, saveModelDir, type ModelCard } from '../../lib/ml/model.ts';
import { normalizeSummary, readTransform, transformAudio } from '../../lib/ml/transform.ts';
import { createRng } from '../../lib/rng.ts';
import { ConfigError } from '../../lib/errors.ts';
import { trainParams } from '../../lib/params-schema.ts';
import { trainModel } from '../../stages/train/index.ts';
import type { DecodedAudio } from '../../lib/audio/wav.ts';
import { FIXTURE_LABELS, writeFeatureFixture } from './model-fixtures.ts';

let tmp: string;
let features: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'model-'));
  features = path.join(tmp, 'features');
  writeFeatureFixture(features);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function tone(freq: number, seconds = 0.2, sampleRate = 16000): DecodedAudio {
  const n = Math.round(seconds * sampleRate);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = 0.3 * Math.sin((2 * Math.PI * freq * i) / sampleRate);
  return { sampleRate, channels: [x], bitDepth: '16', length: n };
}

async function train(name: string, overrides: Record<string, unknown>) {
  const out = path.join(tmp, name);
  const outcome = await trainModel({
    featuresDir: features,
    modelDir: path.join(out, 'model'),
    trainDir: path.join(out, 'train'),
    params: trainParams.parse({ epochs: 8, backend: 'wasm', ...overrides }),
  });
  return { ...outcome, dir: path.join(out, 'model'), trainDir: path.join(out, 'train') };
}

describe('model', () => {
  it('trainModel is reproducible: same inputs, params and backend give the same weights hash', async () => {
    const a = await train('a', { seed: 3 });
    const b = await train('b', { seed: 3 });
    const c = await train('c', { seed: 4 });
    expect(a.backend).toBe('wasm');
    expect(a.modelId).toMatch(/^[0-9a-f]{64}$/);
    expect(b.modelId).toBe(a.modelId);
    expect(fs.readFileSync(path.join(b.dir, 'model.json'), 'utf8')).toBe(
      fs.readFileSync(path.join(a.dir, 'model.json'), 'utf8'),
    );
    expect(c.modelId).not.toBe(a.modelId);
  });

  it('trainModel cnn1d is reproducible on wasm too', async () => {
    const a = await train('cnn-a', { arch: 'cnn1d', units: 8, epochs: 2 });
    const b = await train('cnn-b', { arch: 'cnn1d', units: 8, epochs: 2 });
    expect(a.backend).toBe('wasm');
    expect(b.modelId).toBe(a.modelId);
  });

  it('trainModel leaves no tensors behind', async () => {
    await train('warm', { epochs: 1 });
    const before = tf.memory().numTensors;
    await train('leak', { epochs: 3, patience: 1 });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('saveModelDir/loadModelDir round trip through the IOHandler gives identical predictions', async () => {
    await initBackend('wasm');
    const transformPath = path.join(features, 'transform.json');
    const t = readTransform(transformPath);
    const built = buildModel({
      arch: 'mlp',
      summaryDim: t.mean.length,
      frames: t.frames,
      frameDim: t.frameMean.length,
      classes: 3,
      units: 16,
      seed: 9,
    });
    const card: ModelCard = {
      version: 1,
      arch: 'mlp',
      input: 'summary',
      params: {},
      dataHash: 'x',
      backend: 'wasm',
      backendFallbacks: [],
      metrics: {},
      epochsRun: 0,
      bestEpoch: 0,
      labels: t.labels,
    };
    const dir = path.join(tmp, 'roundtrip');
    const id = await saveModelDir(dir, { model: built.model, transformPath, card });
    const loaded = await loadModelDir(dir);
    expect(loaded.id).toBe(id);
    expect(loaded.labels).toEqual(FIXTURE_LABELS);
    expect(loaded.card).toEqual(card);

    const rng = createRng(5);
    const x = Float32Array.from({ length: 4 * t.mean.length }, () => rng.next() * 4 - 2);
    const before = tf.tidy(() =>
      (built.model.predict(tf.tensor2d(x, [4, t.mean.length])) as tf.Tensor).dataSync(),
    );
    expect(loaded.predictProbabilities(x, 4)).toEqual(before);

    // Audio goes through the featurize code path, then the same network.
    const audio = tone(440);
    const f = transformAudio(t, audio);
    const expected = tf.tidy(() =>
      (built.model.predict(tf.tensor2d(f.summary, [1, f.summary.length])) as tf.Tensor).dataSync(),
    );
    const p = loaded.predictAudio(audio);
    expect(Object.values(p.scores)).toEqual(Array.from(expected));
    expect(p.label).toBe(FIXTURE_LABELS[expected.indexOf(Math.max(...expected))]);
    expect(p.summary).toEqual(Array.from(f.raw));
    expect(loaded.predictSummary(f.summary).scores).toEqual(p.scores);
    const batch = loaded.predictBatch([audio, tone(880)]);
    expect(batch[0]).toEqual(p);
    expect(batch[1]).toEqual(loaded.predictAudio(tone(880)));
    built.model.dispose();
  });

  it('early stopping stops after patience epochs without improvement and restores the best weights', async () => {
    const hard = path.join(tmp, 'hard-features');
    writeFeatureFixture(hard, { separation: 0.4, perClass: { train: 8, validation: 6 }, seed: 2 });
    const out = path.join(tmp, 'early');
    const outcome = await trainModel({
      featuresDir: hard,
      modelDir: path.join(out, 'model'),
      trainDir: path.join(out, 'train'),
      params: trainParams.parse({
        epochs: 400,
        patience: 3,
        lr: 0.05,
        units: 64,
        dropout: 0,
        l2: 0,
        backend: 'wasm',
      }),
    });
    const { fit } = outcome;
    expect(fit.stoppedEarly).toBe(true);
    expect(fit.epochsRun).toBeLessThan(400);
    expect(fit.epochsRun).toBe(fit.bestEpoch + 3);
    const history = JSON.parse(fs.readFileSync(path.join(out, 'train', 'history.json'), 'utf8'));
    expect(history.epochs).toHaveLength(fit.epochsRun);
    const bestLoss = Math.min(...history.epochs.map((e: { val_loss: number }) => e.val_loss));
    expect(history.epochs[fit.bestEpoch - 1].val_loss).toBe(bestLoss);

    // The saved weights are the best epoch's: their validation loss is the best one recorded.
    const model = await loadModelDir(path.join(out, 'model'));
    const val = loadSplit(hard, 'validation');
    const probs = model.predictProbabilities(normalizeSummary(model.transform, val.x), val.n);
    let loss = 0;
    for (let i = 0; i < val.n; i++) loss -= Math.log(Math.max(1e-7, probs[i * 3 + val.y[i]]));
    expect(loss / val.n).toBeCloseTo(bestLoss, 4);
    expect(model.card.bestEpoch).toBe(fit.bestEpoch);
    expect(model.card.metrics.val_loss).toBe(bestLoss);
  });

  it('loadModelDir names the missing file and rejects labels that disagree with the transform', async () => {
    await expect(loadModelDir(path.join(tmp, 'nope'))).rejects.toThrow(
      /card\.json: unreadable .*Re-run the train stage/,
    );
    const { dir } = await train('labels', { epochs: 1 });
    fs.writeFileSync(path.join(dir, 'labels.json'), JSON.stringify(['x', 'y', 'z']));
    await expect(loadModelDir(dir)).rejects.toBeInstanceOf(ConfigError);
  });
});
