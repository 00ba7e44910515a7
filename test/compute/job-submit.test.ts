/**
 * Submitting a CustomJob through the real JobServiceClient (REST fallback) against the fake:
 * a create that Vertex AI carried out but answered with an error (503, 504, a dropped
 * connection) is retried without a second job, by looking the job up by its submission label;
 * a create refused before anything happened is simply retried.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseLockfile } from '../../lib/lockfile.ts';
import { memoryOutput } from '../../lib/output.ts';
import { jobServiceClient, type JobServiceClient } from '../../lib/compute/jobs-client.ts';
import { SUBMISSION_LABEL, submitCustomJob } from '../../lib/compute/job-submit.ts';
import { cli, createComputeRepo, removeRepo, startWorld, type ComputeWorld } from './setup.ts';

/** An image the fake cannot pull: a job submitted with it fails at once, no replica runs. */
const UNPULLABLE = 'us-docker.pkg.dev/p/r/none@sha256:' + 'b'.repeat(64);
const PARENT = 'projects/p/locations/us-central1';

let world: ComputeWorld;
let client: JobServiceClient;
const repos: string[] = [];

beforeAll(async () => {
  world = await startWorld('bkt');
  client = jobServiceClient('us-central1');
}, 30_000);

afterAll(async () => {
  await client?.close();
  await world?.close();
  await Promise.all(repos.map(removeRepo));
});

const lists = () => world.vertex.requests.filter((r) => r === `GET /v1/${PARENT}/customJobs`).length;

async function submit(label: string) {
  const out = memoryOutput();
  const job = await submitCustomJob(
    client,
    { project: 'p', region: 'us-central1', image: UNPULLABLE, remote: 'gs://bkt/direct' },
    {
      label,
      displayName: `lockstep-${label}`,
      labels: { 'lockstep-stage': label },
      args: ['run'],
      outputUriPrefix: 'gs://bkt/direct/output',
      compute: { machineType: 'n1-standard-4', replicas: 1, timeoutSeconds: 600 },
      signal: new AbortController().signal,
      out,
    },
  );
  return { job, err: out.stderr.join('\n') };
}

/** The fake's jobs carrying `label` as their lockstep-stage. */
const jobsOf = (label: string) =>
  [...world.jobs.jobs.values()].filter((j) => j.labels['lockstep-stage'] === label);

describe('submitCustomJob retries', () => {
  it.each([
    ['after-503', 503],
    ['after-504', 504],
    ['after-reset', 'reset'],
  ] as const)(
    'submitCustomJob %s: the job created before the error is adopted, not created twice',
    async (label, fault) => {
      const before = world.jobs.count('create');
      world.vertex.lateFaults.set('createCustomJob', fault);
      const { job, err } = await submit(label);
      expect(world.vertex.lateFaults.has('createCustomJob')).toBe(false);
      expect(world.jobs.count('create')).toBe(before + 1);
      expect(jobsOf(label).map((j) => j.name)).toEqual([job.name]);
      expect(job.labels?.[SUBMISSION_LABEL]).toMatch(/^[0-9a-f]{24}$/);
      expect(err).toMatch(
        new RegExp(
          `${label}: .*; the job may have been created: looking for label ${SUBMISSION_LABEL}=${job.labels![SUBMISSION_LABEL]} before creating it again in `,
        ),
      );
      expect(err).toMatch(
        new RegExp(`${label}: adopted ${job.name} .*created by an attempt whose answer was lost`),
      );
    },
  );

  it('submitCustomJob after a 503 before creation looks, finds nothing and creates exactly one job', async () => {
    const before = world.jobs.count('create');
    world.vertex.faults.set('createCustomJob', 503);
    const listed = lists();
    const { job, err } = await submit('before-503');
    expect(world.jobs.count('create')).toBe(before + 1);
    expect(jobsOf('before-503').map((j) => j.name)).toEqual([job.name]);
    expect(lists()).toBe(listed + 1);
    expect(err).toMatch(
      /before-503: 503 UNAVAILABLE: injected fault in createCustomJob; the job may have been created: looking for/,
    );
    expect(err).toMatch(/before-503: submitted /);
  });

  it('submitCustomJob after a 429 retries the create without a look-up (a quota refusal creates nothing)', async () => {
    const before = world.jobs.count('create');
    world.vertex.faults.set('createCustomJob', 429);
    const listed = lists();
    const { err } = await submit('quota');
    expect(world.jobs.count('create')).toBe(before + 1);
    expect(lists()).toBe(listed);
    expect(err).toMatch(/quota: 429 RESOURCE_EXHAUSTED: injected fault in createCustomJob; retrying in \d/);
  });

  it('submitCustomJob gives up at once on a 400 (refused, nothing to look for)', async () => {
    const before = world.jobs.count('create');
    world.vertex.faults.set('createCustomJob', 400);
    await expect(submit('refused')).rejects.toThrow(/injected fault in createCustomJob/);
    expect(world.jobs.count('create')).toBe(before);
  });
});

describe('fake ListCustomJobs filter', () => {
  it('fake ListCustomJobs filters on labels as the documented syntax does, and answers 400 to what it cannot parse', async () => {
    const { job } = await submit('filtered');
    const id = job.labels![SUBMISSION_LABEL]!;
    const names = async (filter: string) =>
      (await client.listCustomJobs({ parent: PARENT, filter }))[0].map((j) => j.name);
    expect(await names(`labels.${SUBMISSION_LABEL}="${id}"`)).toEqual([job.name]);
    expect(await names(`labels.${SUBMISSION_LABEL}=${id}`)).toEqual([job.name]);
    expect(await names(`labels.lockstep-stage="filtered" AND labels.${SUBMISSION_LABEL}:*`)).toEqual([
      job.name,
    ]);
    expect(await names(`labels.${SUBMISSION_LABEL}="${'0'.repeat(24)}"`)).toEqual([]);
    await expect(names(`labels.${SUBMISSION_LABEL}=="${id}"`)).rejects.toMatchObject({ code: 400 });
    await expect(names(`label.${SUBMISSION_LABEL}="${id}"`)).rejects.toMatchObject({ code: 400 });
  });
});

describe('repro on vertex when create answers an error', () => {
  const lockOf = async (dir: string) =>
    parseLockfile(await readFile(path.join(dir, 'artifacts.lock.yaml'), 'utf8'));

  it.each([
    ['a 503 after the job was created', 'lateFaults', 'created'],
    ['a 503 before creation', 'faults', 'plain'],
  ] as const)(
    'repro featurize with %s runs exactly one job and the stage finishes',
    async (_what, map, bucketDir) => {
      process.env.LOCKSTEP_REMOTE = `gs://bkt/${bucketDir}`;
      const dir = await createComputeRepo('compute:\n  stages:\n    featurize: { backend: vertex }\n');
      repos.push(dir);
      const before = new Set(world.jobs.jobs.keys());
      const rejected = world.vertex.rejected.length;
      world.vertex[map].set('createCustomJob', 503);
      const r = await cli(dir, 'repro', 'featurize');
      expect(r.code, r.err).toBe(0);
      await world.jobs.idle();
      const mine = [...world.jobs.jobs.values()].filter((j) => !before.has(j.name));
      expect(mine).toHaveLength(1);
      expect(mine[0]!.state).toBe('JOB_STATE_SUCCEEDED');
      expect(r.err).toMatch(
        /featurize: 503 UNAVAILABLE: injected fault (in|after) createCustomJob.*; the job may have been created: looking for label lockstep-submission=[0-9a-f]{24} before creating it again/,
      );
      expect(r.err).toMatch(map === 'lateFaults' ? /featurize: adopted / : /featurize: submitted /);
      expect((await lockOf(dir)).stages.featurize).toBeDefined();
      expect(world.vertex.rejected.slice(rejected)).toEqual([]);
    },
    240_000,
  );
});
