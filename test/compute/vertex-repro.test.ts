/**
 * The demo pipeline with featurize on 3 Vertex AI replicas and train on Vertex AI, against the
 * fakes: the lockfile equals a fully local run's, and verify (which reproduces locally) passes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { parseLockfile } from '../../lib/lockfile.ts';
import { cli, createComputeRepo, removeRepo, spawnCli, startWorld, type ComputeWorld } from './setup.ts';

let world: ComputeWorld;
let local: string;
let remote: string;

beforeAll(async () => {
  world = await startWorld();
  [local, remote] = await Promise.all([createComputeRepo(), createComputeRepo()]);
}, 60_000);

afterAll(async () => {
  await world?.close();
  if (process.env.LOCKSTEP_KEEP_TMP) console.log('kept', local, remote);
  else await Promise.all([removeRepo(local), removeRepo(remote)]);
});

const lockOf = async (dir: string) =>
  parseLockfile(await readFile(path.join(dir, 'artifacts.lock.yaml'), 'utf8'));

describe('repro on vertex', () => {
  it('featurize on 3 replicas and train on Vertex AI lock the same hashes as a local run; verify passes', async () => {
    // Its own process: vega numbers SVG gradients per process, so two renders in one process
    // differ (a plot purity issue of its own); each repro here is the first render of its process.
    const here = await spawnCli(local, ['repro', '--compute', 'local']).done;
    expect(here.code, here.err).toBe(0);
    expect(world.jobs.count('create')).toBe(0);

    const there = await cli(remote, 'repro');
    expect(there.code, there.err).toBe(0);
    expect(world.jobs.count('create')).toBe(2);
    expect(world.vertex.rejected).toEqual([]);
    const featurizeJob = [...world.jobs.jobs.values()].find(
      (j) => j.labels['lockstep-stage'] === 'featurize',
    )!;
    expect(
      featurizeJob.jobSpec.workerPoolSpecs.map((p: { replicaCount: string | number }) =>
        Number(p.replicaCount),
      ),
    ).toEqual([1, 2]);
    // Each replica's log lines reached the repro that followed the job.
    expect(there.err).toMatch(/featurize \[workerpool1-1\] .*shard 3\/3/);
    // Its last line too, written as the replica exits: read by the poll that saw the job end.
    expect(there.err).toMatch(/train \[workerpool0-0\] train: outputs written \([0-9a-f]{12}/);
    expect(there.out).toMatch(/machine-hours n1-standard-8: /);

    const a = await lockOf(local);
    const b = await lockOf(remote);
    for (const stage of Object.keys(a.stages)) {
      expect(b.stages[stage]?.outs, stage).toEqual(a.stages[stage]!.outs);
      expect(b.stages[stage]?.code, stage).toEqual(a.stages[stage]!.code);
    }
    expect(b).toEqual(a);

    // A second repro finds everything up to date: no job.
    const again = await cli(remote, 'repro');
    expect(again.code, again.err).toBe(0);
    expect(world.jobs.count('create')).toBe(2);

    const git = simpleGit(remote);
    await git.add('.');
    await git.commit('pin model computed on vertex');
    const verify = await cli(remote, 'verify', 'HEAD');
    expect(verify.code, verify.err).toBe(0);
    expect(verify.out).toMatch(/reproducible/);
  }, 300_000);
});
