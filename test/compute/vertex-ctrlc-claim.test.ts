/**
 * Ctrl-C before the job of a Vertex AI stage exists (here: while its claim is written) submits
 * no job: there is nothing to cancel, and the run exits 130. The claim it took is left stale, so
 * the next run takes it at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, createComputeRepo, removeRepo, spawnCli, startWorld, type ComputeWorld } from './setup.ts';

const CONFIG = 'compute:\n  stages:\n    featurize: { backend: vertex }\n';
let world: ComputeWorld;
let dir: string | undefined;
beforeAll(async () => {
  world = await startWorld('bkt');
}, 30_000);
afterAll(async () => {
  await world?.close();
  await removeRepo(dir);
});

describe('Ctrl-C before the job exists', () => {
  it('submits no job and exits 130', async () => {
    dir = await createComputeRepo(CONFIG);
    const creates = world.jobs.count('create');
    let reached!: () => void;
    const atClaim = new Promise<void>((r) => (reached = r));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    world.gcs.inject({
      kind: 'upload',
      nameIncludes: '/job.json',
      holdUntil: released,
      times: 1,
    });
    const poll = setInterval(() => {
      if (world.gcs.requests.some((r) => r.kind === 'upload' && r.name?.endsWith('/job.json'))) reached();
    }, 20);
    const run = spawnCli(dir, ['repro', 'featurize'], { LOCKSTEP_REMOTE: 'gs://bkt/ctrl-c-early' });
    try {
      await Promise.race([atClaim, run.done]);
      run.child.kill('SIGINT');
      await new Promise((r) => setTimeout(r, 200));
      release();
      const { code, err } = await run.done;
      expect(code, err).toBe(130);
      expect(world.jobs.count('create'), err).toBe(creates);
      expect(err).not.toMatch(/submitted|cancelling/);
      // The claim it took names no job: the next run takes it at once, not after 2 minutes.
      world.gcs.clearFaults();
      process.env.LOCKSTEP_REMOTE = 'gs://bkt/ctrl-c-early';
      const started = Date.now();
      const again = await cli(dir, 'repro', 'featurize');
      expect(again.code, again.err).toBe(0);
      expect(Date.now() - started).toBeLessThan(60_000);
    } finally {
      clearInterval(poll);
      release();
      world.gcs.clearFaults();
    }
  }, 240_000);
});
