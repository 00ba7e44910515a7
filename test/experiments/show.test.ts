import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { collectRows } from '../../lib/experiments/show.ts';
import { writeExperiment } from '../../lib/experiments/store.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const LOCK = (acc: number) =>
  `schema: 1\ndata: {}\nstages:\n  evaluate:\n    code: ${'a'.repeat(64)}\n    deps: []\n    params: {}\n    outs: []\n    metrics:\n      accuracy: ${acc}\n`;
let t: TmpRepo;

beforeEach(async () => {
  t = await createTmpRepo({ 'params.yaml': 'train:\n  lr: 0.01\n', 'artifacts.lock.yaml': LOCK(0.5) });
});
afterEach(async () => {
  await t.cleanup();
});

describe('collectRows', () => {
  it('collectRows reads params and metrics in one batch, the same with and without the params cache', async () => {
    const base = t.git('rev-parse', 'HEAD');
    const meta = { kind: 'run' as const, overrides: {}, status: 'ok', created: '' };
    await writeExperiment(
      t.root,
      base,
      { 'params.yaml': 'train:\n  lr: 0.02\n', 'artifacts.lock.yaml': LOCK(0.7) },
      {
        ...meta,
        name: 'with-meta',
        metrics: { accuracy: 0.7 },
      },
    );
    // An experiment whose metadata carries no metrics: they come from its lockfile.
    await writeExperiment(
      t.root,
      base,
      { 'params.yaml': 'train:\n  lr: 0.03\n', 'artifacts.lock.yaml': LOCK(0.8) },
      {
        ...meta,
        name: 'lock-only',
        metrics: {},
      },
    );
    const cacheFile = path.join(t.repo.stateDir, 'exp-show-cache.json');
    const plain = await collectRows(t.root);
    const cold = await collectRows(t.root, { cacheFile });
    expect(fs.existsSync(cacheFile)).toBe(true);
    const warm = await collectRows(t.root, { cacheFile });
    expect(cold).toEqual(plain);
    expect(warm).toEqual(plain);
    const byName = Object.fromEntries(plain.map((r) => [r.name, r]));
    expect(byName.HEAD!.metrics).toEqual({ accuracy: 0.5 });
    expect(byName['with-meta']!.params).toEqual({ 'train.lr': 0.02 });
    expect(byName['lock-only']!.metrics).toEqual({ accuracy: 0.8 });
    expect(byName['lock-only']!.params).toEqual({ 'train.lr': 0.03 });
  });
});
