/**
 * applyExperiment (lib/experiments/apply.ts) called as a library, the way `exp apply` calls it:
 * it restores the outputs and writes params and lockfile, and it holds the repository lock
 * itself, so a command holding the lock (gc) keeps it from running, and nothing is changed.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { applyExperiment } from '../../lib/experiments/apply.ts';
import { lockPath } from '../../lib/lock.ts';
import { memoryOutput } from '../../lib/output.ts';
import { repoAt } from '../../lib/repo.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { cliIn, createExperimentRepo, PIPE } from './helpers.ts';

let t: TmpRepo;
let holder: ChildProcess | undefined;
const saved = process.env.LOCKSTEP_LOCK_TIMEOUT_MS;

beforeEach(async () => {
  t = await createExperimentRepo('data:\n  seed: 1\ntrain:\n  lr: 0.01 # learning rate\n  epochs: 3\n');
  const r = await cliIn(t.root, 'exp', 'run', '-S', 'train.lr=0.02', '--name', 'lr-02', ...PIPE);
  expect(r.code, r.err).toBe(0);
});

afterEach(async () => {
  holder?.kill();
  holder = undefined;
  if (saved === undefined) delete process.env.LOCKSTEP_LOCK_TIMEOUT_MS;
  else process.env.LOCKSTEP_LOCK_TIMEOUT_MS = saved;
  await t.cleanup();
});

describe('applyExperiment', () => {
  it('applyExperiment restores the outputs, writes params and lockfile, and reports what it did', async () => {
    const lockBefore = t.read('artifacts.lock.yaml');
    const res = await applyExperiment(repoAt(t.root), 'lr-02');
    expect(res.name).toBe('lr-02');
    expect(res.written).toEqual(['params.yaml', 'artifacts.lock.yaml']);
    expect(res.params).toEqual(['train.lr']);
    expect(res.restored.length).toBeGreaterThan(0);
    expect(res.downloaded).toBe(0);
    expect(t.read('params.yaml')).toContain('lr: 0.02 # learning rate');
    expect(t.read('artifacts.lock.yaml')).not.toBe(lockBefore);
    expect(JSON.parse(t.read('out/eval/metrics.json')).accuracy).toBeCloseTo(0.9, 10);
    // The lock was released: applying again takes it again and finds nothing to do.
    const again = await applyExperiment(repoAt(t.root), 'lr-02');
    expect(again.written).toEqual([]);
    expect(again.restored).toEqual([]);
    expect(fs.existsSync(lockPath(repoAt(t.root)))).toBe(false);
  });

  it('applyExperiment waits for the repository lock another process holds and changes nothing when it times out', async () => {
    holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    const repo = repoAt(t.root);
    fs.writeFileSync(
      lockPath(repo),
      JSON.stringify({
        pid: holder.pid,
        hostname: os.hostname(),
        command: 'gc',
        started: new Date().toISOString(),
      }),
    );
    process.env.LOCKSTEP_LOCK_TIMEOUT_MS = '300';
    const params = t.read('params.yaml');
    const lock = t.read('artifacts.lock.yaml');
    const out = memoryOutput();
    await expect(applyExperiment(repo, 'lr-02', { out })).rejects.toThrow(/gc/);
    expect(out.stderr.join('\n')).toMatch(/gc/);
    expect(t.read('params.yaml')).toBe(params);
    expect(t.read('artifacts.lock.yaml')).toBe(lock);
  });
});
