import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');
let t: TmpRepo;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', t.root, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

beforeEach(async () => {
  t = await createTmpRepo({
    'params.yaml': '# tuned by hand\ndata:\n  seed: 1\ntrain:\n  lr: 0.01 # learning rate\n  epochs: 3\n',
    'data/input.txt': 'alpha\nbeta\ngamma\n',
    'code/prepare.txt': '1',
    'code/train.txt': '1',
    'code/evaluate.txt': '1',
    'code/gate.txt': '1',
    'code/report.txt': '1',
  });
  // The experiment runs lockstep's own code from the commit, as in this repository.
  for (const d of ['bin', 'lib', 'stages'])
    fs.cpSync(path.join(PROJECT, d), path.join(t.root, d), { recursive: true });
  fs.copyFileSync(path.join(PROJECT, 'package.json'), path.join(t.root, 'package.json'));
  fs.symlinkSync(path.join(PROJECT, 'node_modules'), path.join(t.root, 'node_modules'), 'dir');
  t.write('.gitignore', '/.lockstep/*\n/out/\n/logs/\nnode_modules\n');
  t.write(
    'pipe/pipeline.ts',
    fs
      .readFileSync(path.join(PROJECT, 'test/pipeline/fixtures/pipeline.ts'), 'utf8')
      .replace('../../../lib/', '../lib/'),
  );
  const r = await cli('repro', '--pipeline', 'pipe/pipeline.ts');
  expect(r.code).toBe(0);
  t.commit('pipeline');
});

afterEach(async () => {
  await t.cleanup();
});

describe('exp', () => {
  it('exp run changes nothing in the workspace and reuses the cache upstream of the change', async () => {
    const before = t.read('params.yaml');
    const raw = await cli('exp', 'run', '-S', 'train.lr=0.02', '--pipeline', 'pipe/pipeline.ts', '--json');
    const res = JSON.parse(raw.out);
    expect(res.stages).toEqual({
      prepare: 'restored',
      report: 'restored',
      train: 'ran',
      evaluate: 'ran',
      gate: 'ran',
    });
    expect(res.status).toBe('ok');
    expect(res.metrics.accuracy).toBeCloseTo(0.9, 10);
    expect(t.read('params.yaml')).toBe(before);
    expect(t.git('status', '--porcelain')).toBe('');
    expect(t.git('rev-parse', `refs/exps/${res.name}^`)).toBe(t.git('rev-parse', 'HEAD'));
    expect(t.git('show', `refs/exps/${res.name}:params.yaml`)).toContain('lr: 0.02 # learning rate');
  });

  it('exp run twice with the same params shares the cache: the second run runs nothing', async () => {
    const first = JSON.parse(
      (await cli('exp', 'run', '-S', 'train.lr=0.03', '--pipeline', 'pipe/pipeline.ts', '--json')).out,
    );
    const second = JSON.parse(
      (await cli('exp', 'run', '-S', 'train.lr=0.03', '--pipeline', 'pipe/pipeline.ts', '--json')).out,
    );
    expect(Object.values(first.stages)).toContain('ran');
    expect(Object.values(second.stages).every((s) => s === 'restored')).toBe(true);
    expect(second.name).toBe(first.name);
    expect(second.metrics).toEqual(first.metrics);
  });

  it('exp show lists HEAD, branches and experiments, sorted by a metric, as text, Markdown and JSON', async () => {
    await cli('exp', 'run', '-S', 'train.lr=0.02', '--name', 'lr-02', '--pipeline', 'pipe/pipeline.ts');
    await cli('exp', 'run', '-S', 'train.lr=0.05', '--name', 'lr-05', '--pipeline', 'pipe/pipeline.ts');
    const table = JSON.parse((await cli('exp', 'show', '--sort', 'accuracy', '--json')).out);
    expect(table.rows.map((r: { name: string }) => r.name)).toEqual(['HEAD', 'main', 'lr-02', 'lr-05']);
    expect(table.params).toEqual(['train.lr']);
    const md = (await cli('exp', 'show', '--md', '--sort', 'accuracy', '--asc')).out.split('\n');
    expect(md[0]).toMatch(/^\| name \| kind \| commit \| status \| origin \| train\.lr \| accuracy \|/);
    expect(md[2]).toMatch(/^\| lr-05 \| run \|/);
    expect((await cli('exp', 'show')).out).toMatch(
      /lr-02\s+run\s+[0-9a-f]{8}\s+ok\s+local\s+0\.0200\s+0\.9000/,
    );
  });

  it('exp apply writes the params and lockfile and restores the outputs; exp remove deletes it', async () => {
    await cli('exp', 'run', '-S', 'train.lr=0.02', '--name', 'lr-02', '--pipeline', 'pipe/pipeline.ts');
    const applied = await cli('exp', 'apply', 'lr-02');
    expect(applied.err).toBe('');
    expect(t.read('params.yaml')).toContain('lr: 0.02 # learning rate');
    expect(JSON.parse(t.read('out/eval/metrics.json')).accuracy).toBeCloseTo(0.9, 10);
    const status = await cli('repro', '--pipeline', 'pipe/pipeline.ts', '--dry', '--json');
    expect(JSON.parse(status.out).stages.every((s: { action: string }) => s.action === 'skip')).toBe(true);
    expect((await cli('exp', 'remove', 'lr-02')).out).toMatch(/removed 1 experiment/);
    expect(t.git('for-each-ref', 'refs/exps/')).toBe('');
    const missing = await cli('exp', 'apply', 'lr-02');
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/experiment "lr-02": not found/);
  });

  it('exp run rejects a bad override with the key named', async () => {
    const bad = await cli('exp', 'run', '-S', 'train.epochs=ten', '--pipeline', 'pipe/pipeline.ts');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/train\.epochs/);
    const usage = await cli('exp', 'run', '-S', 'oops');
    expect(usage.code).toBe(2);
  });
});
