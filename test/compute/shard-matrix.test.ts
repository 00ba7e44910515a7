/**
 * The job-matrix path: `repro featurize --shard i/3` in three separate checkouts (three
 * processes, as three matrix jobs), then `repro featurize --merge-shards 3` in a fourth; the
 * merged lock entry equals a single-machine run's. A merge with shards missing fails, naming them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { mkdtemp } from 'node:fs/promises';
import { simpleGit } from 'simple-git';
import { parseLockfile } from '../../lib/lockfile.ts';
import {
  cli,
  createComputeRepo,
  PROJECT,
  removeRepo,
  spawnCli,
  startWorld,
  type ComputeWorld,
} from './setup.ts';

const CONFIG = 'compute:\n  stages: {}\n';

let world: ComputeWorld;
let local: string;
let merger: string;
const clones: string[] = [];

beforeAll(async () => {
  world = await startWorld('matrix');
  [local, merger] = await Promise.all([createComputeRepo(CONFIG), createComputeRepo(CONFIG)]);
  for (let i = 0; i < 3; i++) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lockstep-shard-'));
    await simpleGit().clone(merger, dir);
    await symlink(path.join(PROJECT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    clones.push(dir);
  }
}, 60_000);

afterAll(async () => {
  await world?.close();
  await Promise.all([local, merger, ...clones].map((d) => removeRepo(d)));
});

const lockOf = async (dir: string) =>
  parseLockfile(await readFile(path.join(dir, 'artifacts.lock.yaml'), 'utf8'));

describe('repro --shard i/N and --merge-shards N', () => {
  it('three shard processes and a merge lock the same featurize entry as one machine', async () => {
    const runs = [
      spawnCli(local, ['repro', 'featurize']).done,
      ...clones.map((dir, i) => spawnCli(dir, ['repro', 'featurize', '--shard', `${i + 1}/3`]).done),
    ];
    const [here, ...shards] = await Promise.all(runs);
    expect(here!.code, here!.err).toBe(0);
    shards.forEach((r, i) => {
      expect(r.code, r.err).toBe(0);
      expect(r.err).toMatch(
        new RegExp(`featurize: shard ${i + 1}/3 of run [0-9a-f]{12} written to gs://matrix/store`),
      );
    });
    // A shard locks nothing of the stage it shards.
    for (const dir of clones) expect((await lockOf(dir)).stages.featurize).toBeUndefined();
    expect(world.gcs.names('matrix').filter((n) => /\/shards\/\d-of-3\.json$/.test(n))).toHaveLength(3);

    const merged = await spawnCli(merger, ['repro', 'featurize', '--merge-shards', '3']).done;
    expect(merged.code, merged.err).toBe(0);
    expect(merged.err).toMatch(/featurize: merging 3 shard\(s\) from gs:\/\/matrix\/store/);
    const a = await lockOf(local);
    const b = await lockOf(merger);
    expect(b.stages.featurize?.outs).toEqual(a.stages.featurize!.outs);
    expect(b).toEqual(a);
    expect(world.jobs.count('create')).toBe(0);
  }, 240_000);

  it('a merge with shards missing fails naming them; a bad --shard is a usage error', async () => {
    const r = await cli(merger, 'repro', 'featurize', '--merge-shards', '4', '--force');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/shard\(s\) 1, 2, 3, 4 of 4 of run [0-9a-f]{12} are not on gs:\/\/matrix\/store/);
    const bad = await cli(merger, 'repro', 'featurize', '--shard', '4/3');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--shard: expected i\/N with 1 <= i <= N "4\/3"/);
  }, 120_000);
});
