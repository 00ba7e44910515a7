import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryOutput } from '../../lib/output.ts';
import { loadSplit } from '../../lib/ml/dataset.ts';
import { loadModelDir } from '../../lib/ml/model.ts';
import { normalizeSummary } from '../../lib/ml/transform.ts';
import { paramsSchema } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { trainModel } from '../../stages/train/index.ts';
import { evaluateStage } from '../../stages/evaluate/index.ts';
import { evalMetricsSchema } from '../../lib/slices/shape.ts';
import { readPredictions } from '../../lib/slices/predictions.ts';
import { FIXTURE_LABELS, writeFeatureFixture } from '../ml/model-fixtures.ts';

let root: string;
beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'evaluate-stage-'));
  writeFeatureFixture(path.join(root, PATHS.features), { separation: 1, seed: 4 });
  await trainModel({
    featuresDir: path.join(root, PATHS.features),
    modelDir: path.join(root, PATHS.model),
    trainDir: path.join(root, PATHS.train),
    params: paramsSchema.parse({ train: { epochs: 15 } }).train,
  });
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('evaluate stage', () => {
  it('evaluateStage writes the contract metrics, the confusion matrix and nine plot files', async () => {
    const params = paramsSchema.parse({});
    const ctx = {
      root,
      params,
      out: memoryOutput(),
      abs: (rel: string) => path.join(root, rel),
      signal: new AbortController().signal,
      inputs: {},
    };
    const result = await evaluateStage(params).run(ctx);
    const metrics = JSON.parse(fs.readFileSync(path.join(root, PATHS.eval, 'metrics.json'), 'utf8'));
    const perClass = FIXTURE_LABELS.flatMap((l) => [`f1.${l}`, `precision.${l}`, `recall.${l}`]);
    const headline = ['accuracy', 'f1_macro', 'precision_macro', 'recall_macro', 'mcc', 'roc_auc_macro'];
    expect(Object.keys(metrics).sort()).toEqual(
      [...headline, ...perClass, 'intervals', 'bootstrap', 'slices'].sort(),
    );
    // The documented shape: every headline metric has an interval that holds its point estimate.
    const shaped = evalMetricsSchema.parse(metrics);
    for (const key of [...headline, ...perClass]) {
      const ci = shaped.intervals![key];
      expect(ci.lo, key).toBeLessThanOrEqual(metrics[key] + 1e-9);
      expect(ci.hi, key).toBeGreaterThanOrEqual(metrics[key] - 1e-9);
    }
    // No manifest here: slices by speaker only (the fixture's test speakers), others empty.
    const test0 = loadSplit(path.join(root, PATHS.features), 'test');
    expect(Object.keys(shaped.slices!.speaker!)).toEqual([...new Set(test0.speakers)].sort());
    expect(shaped.slices!.gender).toEqual({});
    const predictions = readPredictions(path.join(root, PATHS.eval, 'predictions.json'));
    expect(predictions.clips.map((c) => c.path)).toEqual(test0.paths);
    expect(result?.summary).toBe(
      `test accuracy ${metrics.accuracy.toFixed(3)}, macro F1 ${metrics.f1_macro.toFixed(3)}, MCC ${metrics.mcc.toFixed(3)}`,
    );

    // Recompute accuracy one clip at a time through the serving API: the same number.
    const model = await loadModelDir(path.join(root, PATHS.model));
    const test = loadSplit(path.join(root, PATHS.features), 'test');
    const x = normalizeSummary(model.transform, test.x);
    let correct = 0;
    for (let i = 0; i < test.n; i++) {
      const p = model.predictSummary(x.subarray(i * test.d, (i + 1) * test.d));
      if (p.label === FIXTURE_LABELS[test.y[i]]) correct++;
    }
    expect(metrics.accuracy).toBeCloseTo(correct / test.n, 6);
    expect(metrics.accuracy).toBeGreaterThan(0.6);

    const confusion = JSON.parse(fs.readFileSync(path.join(root, PATHS.eval, 'confusion.json'), 'utf8'));
    expect(confusion.labels).toEqual(FIXTURE_LABELS);
    expect(confusion.matrix.flat().reduce((a: number, b: number) => a + b, 0)).toBe(test.n);
    const diagonal = confusion.matrix.reduce((s: number, row: number[], i: number) => s + row[i], 0);
    expect(diagonal).toBe(correct);

    const plots = fs.readdirSync(path.join(root, PATHS.eval, 'plots')).sort();
    expect(plots).toEqual(
      ['confusion', 'learning_curves', 'per_class_f1']
        .flatMap((n) => [`${n}.png`, `${n}.svg`, `${n}.vl.json`])
        .sort(),
    );
  });
});
