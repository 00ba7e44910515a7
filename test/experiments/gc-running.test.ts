import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cache } from '../../lib/store/cache.ts';
import { collectGarbage } from '../../lib/store/gc.ts';
import { liveWriters } from '../../lib/store/in-flight.ts';
import { runExperiment } from '../../lib/experiments/run.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { cliIn, createExperimentRepo } from './helpers.ts';

let t: TmpRepo;

beforeEach(async () => {
  t = await createExperimentRepo('train:\n  lr: 0.01\n  epochs: 3\ndata:\n  seed: 1\n');
});

afterEach(async () => {
  await t.cleanup();
});

describe('gc while an experiment runs', () => {
  it('keeps what a running experiment wrote before its ref pins it, and collects it once the run is over', async () => {
    const cache = new Cache(t.repo);
    let unpinned = '';
    let during: Awaited<ReturnType<typeof collectGarbage>> | undefined;
    let cliDuring = '';
    await runExperiment(t.repo, {
      overrides: { 'train.lr': 0.02 },
      name: 'busy',
      pipeline: 'pipe/pipeline.ts',
      onWorktree: async () => {
        // An object the run has written but no ref, branch or lockfile pins yet.
        unpinned = await cache.insertBytes(Buffer.from(`half-way ${Date.now()}`));
        during = await collectGarbage(t.repo);
        const r = await cliIn(t.root, 'gc');
        expect(r.code, r.err).toBe(0);
        cliDuring = r.out;
      },
    });
    expect(during!.deleted.map((d) => d.oid)).not.toContain(unpinned);
    expect(during!.inFlight.writers).toEqual(['exp run busy']);
    expect(during!.inFlight.objects).toBeGreaterThanOrEqual(1);
    expect(cliDuring).toMatch(/running command\(s\) started \(exp run busy\)/);
    expect(cache.hasSync(unpinned)).toBe(true);
    // The run is over: its marker is gone, and what nothing pins is garbage again.
    expect(liveWriters(t.repo)).toEqual([]);
    const after = await collectGarbage(t.repo);
    expect(after.deleted.map((d) => d.oid)).toContain(unpinned);
    expect(cache.hasSync(unpinned)).toBe(false);
    // What the experiment pins survived both collections: apply restores it.
    const apply = await cliIn(t.root, 'exp', 'apply', 'busy');
    expect(apply.code, apply.err).toBe(0);
  });

  it('a writer killed with SIGKILL protects nothing and its marker is cleared', async () => {
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const dir = path.join(t.repo.stateDir, 'in-flight');
    fs.mkdirSync(dir, { recursive: true });
    const marker = path.join(dir, `${dead}-dead.json`);
    fs.writeFileSync(
      marker,
      JSON.stringify({ pid: dead, hostname: os.hostname(), what: 'exp run gone', started: 0 }),
    );
    const oid = await new Cache(t.repo).insertBytes(Buffer.from('orphan'));
    const plan = await collectGarbage(t.repo);
    expect(plan.inFlight).toEqual({ writers: [], objects: 0 });
    expect(plan.deleted.map((d) => d.oid)).toContain(oid);
    expect(fs.existsSync(marker)).toBe(false);
  });
});
