/**
 * Train-time benchmark: the same features, params and epochs trained on each backend available
 * here (wasm, cpu; tfjs-node when it loads). Headline: `wasm_speedup_vs_cpu` = cpu seconds /
 * wasm seconds for the default mlp. Features have the demo pipeline's shapes (default featurize
 * config, 7 classes, 30 clips per class in train) so the figure reflects `npm start`. cnn1d
 * (convolutions trained as unfold + matMul) is timed for one epoch per backend.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { initBackend, type BackendName } from '../lib/ml/backend.ts';
import { featurizeParams, EMOTIONS, trainParams } from '../lib/params-schema.ts';
import { trainModel } from '../stages/train/index.ts';
import { writeFeatureFixture } from '../test/ml/model-fixtures.ts';

const EPOCHS = 20;
const REPEATS = 2;

async function timeTrain(
  dir: string,
  backend: BackendName,
  arch: 'mlp' | 'cnn1d',
  epochs: number,
): Promise<{ seconds: number; id: string }> {
  const out = path.join(dir, `${backend}-${arch}`);
  const outcome = await trainModel({
    featuresDir: path.join(dir, 'features'),
    modelDir: path.join(out, 'model'),
    trainDir: path.join(out, 'train'),
    params: trainParams.parse({ arch, epochs, patience: 0, backend }),
  });
  if (outcome.backend !== backend)
    throw new Error(`bench: asked for ${backend}, trained on ${outcome.backend}`);
  return { seconds: outcome.seconds, id: outcome.modelId };
}

export default async function bench(): Promise<Record<string, number | string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-train-'));
  try {
    const shape = writeFeatureFixture(path.join(dir, 'features'), {
      config: featurizeParams.parse({}),
      labels: [...EMOTIONS],
      perClass: { train: 30, validation: 6, test: 6 },
      separation: 0.5,
    });
    const backends: BackendName[] = [];
    if ((await initBackend('auto')).name === 'tensorflow') backends.push('tensorflow');
    backends.push('wasm', 'cpu');
    const best: Record<string, number> = {};
    const ids: Record<string, string[]> = {};
    // Interleave backends so background load on the shared machine hits both alike; keep the best.
    for (let r = 0; r < REPEATS; r++) {
      for (const b of backends) {
        const { seconds, id } = await timeTrain(dir, b, 'mlp', EPOCHS);
        best[b] = Math.min(best[b] ?? Infinity, seconds);
        (ids[b] ??= []).push(id);
      }
    }
    // cnn1d: one epoch per backend on the same full-size features (T = 250 frames).
    const cnn: Record<string, number> = {};
    for (const b of backends) cnn[b] = (await timeTrain(dir, b, 'cnn1d', 1)).seconds;
    const result: Record<string, number | string> = {
      wasm_speedup_vs_cpu: Number((best.cpu / best.wasm).toFixed(2)),
      mlp_epochs: EPOCHS,
      train_examples: 30 * EMOTIONS.length,
      summary_dim: shape.d,
      frames: shape.t,
      frame_dim: shape.f,
      reproducible_runs: backends.every((b) => new Set(ids[b]).size === 1) ? 1 : 0,
      // Everyone shares two cores: the load shows how noisy the absolute seconds are.
      load_average_1m: Number(os.loadavg()[0].toFixed(1)),
      cnn1d_wasm_speedup_vs_cpu: Number((cnn.cpu / cnn.wasm).toFixed(2)),
    };
    for (const b of backends) {
      result[`mlp_${b}_seconds`] = Number(best[b].toFixed(3));
      result[`cnn1d_${b}_seconds_per_epoch`] = Number(cnn[b].toFixed(3));
    }
    return result;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
