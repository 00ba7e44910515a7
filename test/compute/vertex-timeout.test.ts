/**
 * A stage's `timeout` counts the job's running time (from its startTime), never the time it
 * waits for machines: the fake holds featurize's job PENDING for longer than the timeout, and
 * its replica, once running, never finishes on its own (a tiny featurize can take less than the
 * 1 s timeout), so only the timeout's cancel can end it.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, createComputeRepo, removeRepo, startWorld, type ComputeWorld } from './setup.ts';

const NEVER_FINISH = pathToFileURL(path.resolve(import.meta.dirname, '../support/never-finish.mjs')).href;

/** Longer than the timeout of 1 s. */
const PENDING_MS = 3000;

let world: ComputeWorld;
let dir: string | undefined;
let heldFor = 0;

beforeAll(async () => {
  world = await startWorld('bkt', {
    holdPending: async () => {
      const t0 = Date.now();
      await new Promise((r) => setTimeout(r, PENDING_MS));
      heldFor = Date.now() - t0;
    },
    replicaEnv: () => ({
      NODE_OPTIONS: [process.env.NODE_OPTIONS, `--import=${NEVER_FINISH}`].filter(Boolean).join(' '),
    }),
  });
}, 30_000);

afterAll(async () => {
  await world?.close();
  await removeRepo(dir);
});

describe('vertex job timeout', () => {
  it('a job held PENDING past its timeout is not cancelled until it has run that long, and the error says both times', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/timeout';
    dir = await createComputeRepo('compute:\n  stages:\n    featurize: { backend: vertex, timeout: 1 }\n');
    const r = await cli(dir, 'repro', 'featurize');
    expect(r.code).toBe(1);
    expect(heldFor).toBeGreaterThanOrEqual(PENDING_MS - 50);
    const m = r.err.match(
      /featurize failed: Vertex AI job \d+ timed out after (\d+)s running \(queued (\d+)s\) and was cancelled \(compute\.stages\.featurize\.timeout: 1\)/,
    );
    expect(m, r.err).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(1);
    expect(Number(m![2])).toBeGreaterThanOrEqual(Math.floor(PENDING_MS / 1000));
    await world.jobs.idle();
    const job = [...world.jobs.jobs.values()].at(-1)!;
    expect(world.jobs.count('cancel')).toBe(1);
    expect(job.state).toBe('JOB_STATE_CANCELLED');
    // It ran (its replicas started) before the cancel: the wait in PENDING was not counted.
    expect(job.startTime).toBeDefined();
    expect(Date.parse(job.endTime!) - Date.parse(job.startTime!)).toBeGreaterThanOrEqual(1000);
  }, 240_000);
});
