/**
 * Experiments whose stages compute as Vertex AI CustomJobs (the fake JobService and fake GCS of
 * test/compute): the demo pipeline with featurize and train on Vertex AI in `.lockstep/config.yaml`
 * (git-ignored there, so only the workspace has it and the experiment's worktree must get it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { parseLockfile } from '../../lib/lockfile.ts';
import type { Lockfile } from '../../lib/types.ts';
import { repoAt } from '../../lib/repo.ts';
import { Cache } from '../../lib/store/cache.ts';
import { lockfileArtifacts } from '../../lib/store/artifacts.ts';
import {
  cli,
  createComputeRepo,
  removeRepo,
  spawnCli,
  startWorld,
  type ComputeWorld,
} from '../compute/setup.ts';

const CONFIG = 'compute:\n  stages:\n    featurize: { backend: vertex }\n    train: { backend: vertex }\n';

let world: ComputeWorld;
/** Stage whose job's primary replica crashes (its first cache write fails with ENOSPC). */
let crash: string | undefined;
const repos: string[] = [];

beforeAll(async () => {
  world = await startWorld('bkt', {
    replicaEnv: (job) =>
      job.labels['lockstep-stage'] === crash ? { LOCKSTEP_FAULT: 'enospc-after:0' } : undefined,
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

const git = (dir: string, ...args: string[]) =>
  execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
const lockOf = (dir: string, name: string): Lockfile =>
  parseLockfile(
    execFileSync('git', ['show', `refs/exps/${name}:artifacts.lock.yaml`], { cwd: dir, encoding: 'utf8' }),
  );
/** CustomJobs created since `from` (an index into the fake's calls), by stage label. */
const jobsSince = (from: number) =>
  world.jobs.calls
    .slice(from)
    .filter((c) => c.startsWith('create '))
    .map((c) => world.jobs.jobs.get(c.slice('create '.length))!);

describe('experiments on vertex', () => {
  it('exp run -S train.epochs=2 on Vertex AI records the same metrics and artifact hashes as the same exp run locally', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/store';
    const [here, there] = await Promise.all([repo(), repo()]);
    const exp = ['exp', 'run', '-S', 'train.epochs=2', '--name', 'e2', '--json'];

    const local = await cli(here, ...exp, '--compute', 'local');
    expect(local.code, local.err).toBe(0);
    expect(world.jobs.count('create')).toBe(0);

    const calls = world.jobs.calls.length;
    const remote = await cli(there, ...exp);
    expect(remote.code, remote.err).toBe(0);
    // The worktree had the workspace's compute config: featurize and train ran as jobs.
    expect(jobsSince(calls).map((j) => j.labels['lockstep-stage'])).toEqual(['featurize', 'train']);
    expect(world.vertex.rejected).toEqual([]);

    const a = JSON.parse(local.out);
    const b = JSON.parse(remote.out);
    expect(b.status).toBe('ok');
    expect(b.metrics).toEqual(a.metrics);
    expect(b.metrics.f1_macro).toBeTypeOf('number');
    expect(lockOf(there, 'e2')).toEqual(lockOf(here, 'e2'));
    // Recorded as for a local run: every artifact the ref pins is in this clone's cache.
    const cache = new Cache(repoAt(there));
    for (const ref of lockfileArtifacts(lockOf(there, 'e2')))
      expect(cache.hasSync(ref.hash), ref.path).toBe(true);
    // The workspace is untouched.
    expect(git(there, 'status', '--porcelain')).toBe('');
  }, 400_000);

  it('a queue of two with -j 2 on Vertex AI: one featurize job shared (same inputs), one train job each (other params)', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/queue';
    const dir = await repo();
    const queued = await cli(dir, 'exp', 'run', '--queue', '-S', 'train.epochs=2,3', '--name', 'ep');
    expect(queued.code, queued.err).toBe(0);
    const calls = world.jobs.calls.length;
    const run = await cli(dir, 'exp', 'queue', 'start', '-j', '2');
    expect(run.code, run.err).toBe(0);
    expect(run.out).toBe('queue: 2 done, 0 failed');

    const jobs = jobsSince(calls);
    const featurize = jobs.filter((j) => j.labels['lockstep-stage'] === 'featurize');
    const train = jobs.filter((j) => j.labels['lockstep-stage'] === 'train');
    expect(featurize).toHaveLength(1);
    expect(train).toHaveLength(2);
    expect(jobs).toHaveLength(3);
    expect(new Set(train.map((j) => j.labels['lockstep-key'])).size).toBe(2);
    expect(train.map((j) => j.jobSpec.workerPoolSpecs[0].machineSpec.machineType)).toEqual([
      'n1-standard-4',
      'n1-standard-4',
    ]);
    expect(jobs.every((j) => j.state === 'JOB_STATE_SUCCEEDED')).toBe(true);

    const [one, two] = [lockOf(dir, 'ep-1'), lockOf(dir, 'ep-2')];
    expect(one.stages.featurize!.outs).toEqual(two.stages.featurize!.outs);
    expect(one.stages.train!.outs).not.toEqual(two.stages.train!.outs);
    // Each experiment's train out is the one its own job wrote (jobs/<run key>/result.json).
    const written = train.map((j) => {
      const name = world.gcs
        .names('bkt')
        .find((n) => n.startsWith(`queue/jobs/${j.labels['lockstep-key']}`) && n.endsWith('/result.json'))!;
      return JSON.parse(world.gcs.object('bkt', name)!.data.toString('utf8')).outs;
    });
    expect(written).toHaveLength(2);
    expect(written).toEqual(expect.arrayContaining([one.stages.train!.outs, two.stages.train!.outs]));
  }, 400_000);

  it('a failed train job leaves the queued experiment failed with the job error and no ref; a re-run records it', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/store';
    const dir = repos[1]!; // featurize of these inputs is on gs://bkt/store already (first test)
    crash = 'train';
    const queued = await cli(dir, 'exp', 'run', '--queue', '-S', 'train.epochs=4', '--name', 'broken');
    expect(queued.code, queued.err).toBe(0);
    const calls = world.jobs.calls.length;
    const run = await cli(dir, 'exp', 'queue', 'start', '--compute', 'vertex');
    expect(run.code).toBe(1);
    expect(jobsSince(calls).map((j) => [j.labels['lockstep-stage'], j.state])).toEqual([
      ['train', 'JOB_STATE_FAILED'],
    ]);
    const status = JSON.parse((await cli(dir, 'exp', 'queue', 'status', '--json')).out) as Array<{
      name: string;
      state: string;
      error?: string;
    }>;
    const entry = status.find((e) => e.name === 'broken')!;
    expect(entry.state).toBe('failed');
    expect(entry.error).toMatch(
      /^exp broken: stage train failed \(.*Vertex AI job \d+ failed: .*no space left on device.*\); nothing was recorded/,
    );
    expect(git(dir, 'for-each-ref', 'refs/exps/broken')).toBe('');

    crash = undefined;
    const again = await cli(dir, 'exp', 'run', '-S', 'train.epochs=4', '--name', 'broken', '--json');
    expect(again.code, again.err).toBe(0);
    expect(JSON.parse(again.out).status).toBe('ok');
    expect(lockOf(dir, 'broken').stages.gate).toBeDefined();
  }, 400_000);

  it('exp queue start stopped by SIGTERM mid-job cancels the job and leaves the entry queued, with no ref and no worktree', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/stopped';
    const dir = await repo();
    const queued = await cli(dir, 'exp', 'run', '--queue', '-S', 'train.epochs=2', '--name', 'stopped');
    expect(queued.code, queued.err).toBe(0);
    const cancels = world.jobs.count('cancel');
    const running = new Promise<void>((resolve) => (world.jobs.onRunning = () => resolve()));
    const run = spawnCli(dir, ['exp', 'queue', 'start']);
    await Promise.race([running, run.done]);
    world.jobs.onRunning = undefined;
    // A cancelled workflow (or `kill`) sends SIGTERM to the queue process only, not its children.
    run.child.kill('SIGTERM');
    const { code, err } = await run.done;
    expect(code, err).toBe(143);
    expect(err).toMatch(/exp queue: interrupted; .* queued again/);
    expect(world.jobs.count('cancel')).toBe(cancels + 1);
    await world.jobs.idle();
    expect([...world.jobs.jobs.values()].at(-1)!.state).toBe('JOB_STATE_CANCELLED');
    const status = JSON.parse((await cli(dir, 'exp', 'queue', 'status', '--json')).out) as Array<{
      name: string;
      state: string;
    }>;
    expect(status.map((e) => [e.name, e.state])).toEqual([['stopped', 'queued']]);
    expect(git(dir, 'for-each-ref', 'refs/exps/')).toBe('');
    expect(git(dir, 'worktree', 'list').split('\n')).toHaveLength(1);
  }, 240_000);
});
