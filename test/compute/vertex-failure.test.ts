/**
 * Failure, resume, interrupt and concurrency of stages computed as Vertex AI jobs (fakes):
 * featurize on 2 replicas, run up to `train` (train local).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseLockfile } from '../../lib/lockfile.ts';
import { cli, createComputeRepo, removeRepo, spawnCli, startWorld, type ComputeWorld } from './setup.ts';

const CONFIG = 'compute:\n  stages:\n    featurize: { backend: vertex, replicas: 2 }\n';

let world: ComputeWorld;
/** Replica that crashes (its first cache write fails with ENOSPC), per bucket run. */
let crash: string | undefined;
const repos: string[] = [];

beforeAll(async () => {
  world = await startWorld('bkt', {
    replicaEnv: (_job, replica) => (replica === crash ? { LOCKSTEP_FAULT: 'enospc-after:0' } : undefined),
  });
}, 30_000);

afterAll(async () => {
  await world?.close();
  await Promise.all(repos.map(removeRepo));
});

async function repo(): Promise<string> {
  const dir = await createComputeRepo(CONFIG);
  repos.push(dir);
  return dir;
}

const lockOf = async (dir: string) =>
  parseLockfile(await readFile(path.join(dir, 'artifacts.lock.yaml'), 'utf8'));

describe('vertex jobs', () => {
  it('a crashing replica fails the job and the stage with its error; finished stages stay locked; a re-run resumes', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/crash';
    const dir = await repo();
    crash = 'workerpool1-0';
    const failed = await cli(dir, 'repro', 'train');
    expect(failed.code).toBe(1);
    expect(failed.err).toMatch(
      /featurize failed: Vertex AI job \d+ failed: The replica workerpool1-0 exited with a non-zero status of 1.*workerpool1-0: .*no space left on device.*https:\/\/console\.cloud\.google\.com\/vertex-ai\/locations\/us-central1\/training\/\d+.*Skipped: train/,
    );
    const lock = await lockOf(dir);
    expect(Object.keys(lock.stages).sort()).toEqual(['data', 'ingest', 'validate']);
    const created = world.jobs.count('create');

    crash = undefined;
    const retried = await cli(dir, 'repro', 'train');
    expect(retried.code, retried.err).toBe(0);
    expect(world.jobs.count('create')).toBe(created + 1);
    expect(retried.out).toMatch(/validate\s+skipped/);
    expect((await lockOf(dir)).stages.train).toBeDefined();
  }, 240_000);

  it('Ctrl-C during a running job sends exactly one cancel and exits 130', async () => {
    const dir = await repo();
    const bucketEnv = { LOCKSTEP_REMOTE: 'gs://bkt/cancel' };
    const running = new Promise<void>((resolve) => (world.jobs.onRunning = () => resolve()));
    const run = spawnCli(dir, ['repro', 'featurize'], bucketEnv);
    await Promise.race([running, run.done]);
    world.jobs.onRunning = undefined;
    run.child.kill('SIGINT');
    const { code, err } = await run.done;
    expect(code, err).toBe(130);
    expect(world.jobs.count('cancel')).toBe(1);
    await world.jobs.idle();
    const job = [...world.jobs.jobs.values()].at(-1)!;
    expect(job.state).toBe('JOB_STATE_CANCELLED');
    expect(err).toMatch(/cancelling/);
  }, 240_000);

  it('Ctrl-C cancels at once, not at the next poll of a slow poll interval', async () => {
    const dir = await repo();
    // A poll interval far longer than the test may take: the cancel must not wait for it.
    const env = { LOCKSTEP_REMOTE: 'gs://bkt/cancel-now', LOCKSTEP_VERTEX_POLL_MS: '600000' };
    const cancels = world.jobs.count('cancel');
    const running = new Promise<void>((resolve) => (world.jobs.onRunning = () => resolve()));
    const run = spawnCli(dir, ['repro', 'featurize'], env);
    await Promise.race([running, run.done]);
    world.jobs.onRunning = undefined;
    // Once repro has printed the job's state it is in its poll wait when Ctrl-C arrives.
    // The line may already be out (on either stream) by now: look at everything printed so far.
    await new Promise<void>((resolve) => {
      const printed = () => /featurize: \d+ (queued|pending|running)/.test(run.output());
      const onData = () => {
        if (!printed()) return;
        run.child.stderr!.off('data', onData);
        run.child.stdout!.off('data', onData);
        resolve();
      };
      run.child.stderr!.on('data', onData);
      run.child.stdout!.on('data', onData);
      void run.done.then(() => resolve());
      onData();
    });
    run.child.kill('SIGINT');
    // Fails by the test timeout when the cancel waits for the 600 s poll; the process goes too.
    const stop = setTimeout(() => run.child.kill('SIGKILL'), 230_000);
    const { code, err } = await run.done;
    clearTimeout(stop);
    expect(code, err).toBe(130);
    expect(world.jobs.count('cancel')).toBe(cancels + 1);
  }, 240_000);

  it('two repro processes on the same stage submit one job', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/twice';
    const [a, b] = await Promise.all([repo(), repo()]);
    const before = world.jobs.count('create');
    const [ra, rb] = await Promise.all([cli(a, 'repro', 'featurize'), cli(b, 'repro', 'featurize')]);
    expect(ra.code, ra.err).toBe(0);
    expect(rb.code, rb.err).toBe(0);
    expect(world.jobs.count('create')).toBe(before + 1);
    // The one that did not submit followed the other's job (or found its outputs).
    expect(`${ra.err}\n${rb.err}`).toMatch(/reattaching to running job|outputs of this run are on/);
    expect((await lockOf(a)).stages.featurize).toEqual((await lockOf(b)).stages.featurize);
  }, 240_000);

  it('a claim whose job succeeded but whose outputs left the remote is taken over, not followed forever', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/stale';
    const dir = await repo();
    const first = await cli(dir, 'repro', 'featurize');
    expect(first.code, first.err).toBe(0);
    const before = world.jobs.count('create');
    // The job's shard pointers are gone (gc of the remote, a deleted prefix); its claim stays.
    const shards = world.gcs.names('bkt').filter((n) => /^stale\/jobs\/[^/]+\/shards\//.test(n));
    expect(shards).toHaveLength(2);
    for (const n of shards) world.gcs.deleteObject('bkt', n);
    const again = await cli(dir, 'repro', '--force', 'featurize');
    expect(again.code, again.err).toBe(0);
    expect(world.jobs.count('create')).toBe(before + 1);
    expect((await lockOf(dir)).stages.featurize).toBeDefined();
  }, 240_000);
});
