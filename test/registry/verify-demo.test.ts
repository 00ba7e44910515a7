/**
 * The default path reproduces: the real demo pipeline (tiny params) run on the environment's own
 * branch, committed, then `verify HEAD` re-runs every stage in a worktree and every output hash
 * matches. Two things used to break it: train wrote its wall time into out/train, and the gate
 * read its baseline from the branch head, which the commit itself had just moved ("no baseline"
 * on the first run, "baseline dev@<the commit>" in the verify run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { parseLockfile, serializeLockfile } from '../../lib/lockfile.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');

const PARAMS = `data:
  source: demo
  speakers: 4
  words: 1
  seed: 7
train:
  epochs: 4
  patience: 2
gate:
  baseline_env: dev
  thresholds:
    - { metric: f1_macro, direction: higher, min: 0, tolerance: 0.02 }
`;

let dir: string;
let git: SimpleGit;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lockstep-verify-demo-'));
  git = simpleGit(dir);
  await git.raw(['init', '-q', '-b', 'dev']);
  await git.addConfig('user.email', 'ml@example.com');
  await git.addConfig('user.name', 'ML Engineer');
  await git.addConfig('commit.gpgsign', 'false');
  for (const d of ['bin', 'lib', 'stages', 'promotion'])
    await cp(path.join(PROJECT, d), path.join(dir, d), { recursive: true });
  await cp(path.join(PROJECT, 'package.json'), path.join(dir, 'package.json'));
  await symlink(path.join(PROJECT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  await writeFile(path.join(dir, '.gitignore'), 'node_modules\n/.lockstep/*\n/out/\n');
  await writeFile(path.join(dir, 'params.yaml'), PARAMS);
  // A tiny corpus trains a weak model: the dev gate checks only the change against its baseline.
  await writeFile(
    path.join(dir, 'promotion/dev.yaml'),
    'branch: dev\nendpoint:\n  kind: local\ngate:\n  thresholds:\n    - { metric: f1_macro, direction: higher, min: 0, tolerance: 0.02 }\n',
  );
  await git.add('.');
  await git.commit('lockstep with tiny demo params');
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('verify on the demo pipeline', () => {
  it('verify HEAD reproduces every output after repro and commit on the baseline branch', async () => {
    const first = await cli('repro');
    expect(first.code, first.err).toBe(0);
    const lock = parseLockfile(await readFile(path.join(dir, 'artifacts.lock.yaml'), 'utf8'));
    // Run facts are not outputs: the wall time is in the run record, not in out/train's metrics.
    expect(lock.stages.train?.metrics).not.toHaveProperty('train_seconds');
    const record = JSON.parse(await readFile(path.join(dir, '.lockstep/records/train.json'), 'utf8'));
    expect(record.facts.train_seconds).toBeGreaterThan(0);
    // The first run had no baseline: the dev branch pinned no evaluate metrics yet.
    expect(lock.stages.gate?.inputs?.baseline).toEqual({ hash: expect.any(String), label: 'dev (none)' });
    await git.add('.');
    await git.commit('pin demo model');

    const res = await cli('verify', 'HEAD', '--json');
    expect(res.code, res.err).toBe(0);
    const v = JSON.parse(res.out);
    expect(v.reproducible).toBe(true);
    expect(v.outputs.length).toBeGreaterThanOrEqual(7);
    for (const o of v.outputs) expect(o, `${o.stage} ${o.path}`).toMatchObject({ match: true });
    expect(v.model.match).toBe(true);
  }, 300_000);

  it('moving the baseline branch re-runs only the gate, naming the baseline', async () => {
    await git.raw(['checkout', '-q', '-b', 'feature']);
    // The dev branch moves to another model: its lockfile pins other evaluate metrics.
    await git.raw(['checkout', '-q', 'dev']);
    const lf = parseLockfile(await readFile(path.join(dir, 'artifacts.lock.yaml'), 'utf8'));
    // Change thresholds are judged on intervals: the other model is better beyond doubt.
    lf.stages.evaluate!.metrics = {
      ...lf.stages.evaluate!.metrics,
      f1_macro: 0.99,
      'intervals.f1_macro.lo': 0.98,
      'intervals.f1_macro.hi': 1,
    };
    await writeFile(path.join(dir, 'artifacts.lock.yaml'), serializeLockfile(lf));
    await git.commit('another model on dev', ['artifacts.lock.yaml']);
    const devHead = (await git.revparse(['HEAD'])).trim();
    await git.raw(['checkout', '-q', 'feature']);

    const plan = await cli('repro', '--dry', '--json');
    expect(plan.code, plan.err).toBe(0);
    const actions = Object.fromEntries(
      JSON.parse(plan.out).stages.map((s: { name: string; action: string; reason: string }) => [s.name, s]),
    );
    for (const name of ['data', 'ingest', 'validate', 'featurize', 'train', 'evaluate'])
      expect(actions[name].action, name).toBe('skip');
    expect(actions.gate.action).toBe('run');
    expect(actions.gate.reason).toBe(`baseline dev@${devHead.slice(0, 8)} changed`);

    // Running it gates against the new baseline (0.99): the change threshold now fails.
    const run = await cli('repro');
    expect(run.code).toBe(1);
    expect(run.out).toMatch(/gate\s+ran\s+baseline dev@[0-9a-f]{8} changed/);
    const verdict = JSON.parse(await readFile(path.join(dir, 'out/gate/verdict.json'), 'utf8'));
    expect(verdict.baseline).toEqual({ env: 'dev', metrics: expect.objectContaining({ f1_macro: 0.99 }) });
    // Its predictions in the cache no longer match its metrics: the intervals are compared instead.
    const change = verdict.reasons.find((r: { kind: string }) => r.kind === 'change');
    expect(change).toMatchObject({ passed: false, method: 'interval overlap' });
  }, 300_000);

  it('gating the pinned model against itself pairs the predictions clip by clip', async () => {
    // Back on dev at the commit that pinned the real model: the baseline is that model itself,
    // and its predictions are in the local cache.
    await git.raw(['checkout', '-q', '-f', 'dev']);
    await git.raw(['reset', '-q', '--hard', 'HEAD~1']);
    const run = await cli('repro');
    expect(run.code, run.err).toBe(0);
    expect(run.out).toMatch(/gate\s+ran\s+baseline dev@[0-9a-f]{8} changed/);
    const verdict = JSON.parse(await readFile(path.join(dir, 'out/gate/verdict.json'), 'utf8'));
    const change = verdict.reasons.find((r: { kind: string }) => r.kind === 'change');
    expect(change).toMatchObject({ passed: true, method: 'paired bootstrap' });
    expect(change.detail).toBe(
      'f1_macro 0, 95% CI [0, 0] vs dev (paired bootstrap): not a significant regression beyond 0.02',
    );
  }, 300_000);
});
