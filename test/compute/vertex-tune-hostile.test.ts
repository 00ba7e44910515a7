/**
 * `lockstep tune` on Vertex AI when the remote or the jobs misbehave: a trial whose epoch file is
 * not an epoch (written by something else) fails with a one-line error and its job is cancelled
 * once, never left running; a trial job that fails is recorded failed and an outcome.json
 * beside it is never taken as its result; the study goes on; and params.yaml edited while the
 * study ran is left as the user left it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { writeFeatureFixture } from '../ml/model-fixtures.ts';
import { cli, createComputeRepo, removeRepo, startWorld, type ComputeWorld } from './setup.ts';
import type { FakeCustomJob } from '../support/fake-vertex-jobs.ts';

let world: ComputeWorld;
let hold: ((job: FakeCustomJob) => Promise<void>) | undefined;
const repos: string[] = [];

beforeAll(async () => {
  world = await startWorld('bkt', { holdPending: (job) => hold?.(job) ?? Promise.resolve() });
}, 30_000);

afterAll(async () => {
  await world?.close();
  await Promise.all(repos.map(removeRepo));
});

const keyOf = (job: FakeCustomJob): string => {
  const args = job.jobSpec.workerPoolSpecs[0].containerSpec.args as string[];
  return args[args.indexOf('--key') + 1];
};
const cancelsOf = (job: FakeCustomJob) => world.jobs.calls.filter((c) => c === `cancel ${job.name}`).length;

/** Resolves when `job` has been cancelled, or after `ms` (so a missing cancel fails, not hangs). */
async function cancelled(job: FakeCustomJob, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (cancelsOf(job) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

it('a garbage epoch fails its trial and cancels its job once; a failed job is never scored; an edited params.yaml is kept', async () => {
  process.env.LOCKSTEP_REMOTE = 'gs://bkt/hostile';
  const dir = await createComputeRepo('compute:\n  tune: { backend: vertex, machine_type: n1-standard-8 }\n');
  repos.push(dir);
  const text = [
    'train: { arch: mlp, epochs: 4, batch_size: 16, lr: 0.00005, units: 8, patience: 0, seed: 1, backend: cpu }',
    'tune:',
    '  objective: { metric: val_accuracy, direction: maximize }',
    '  sampler: random',
    '  seed: 3',
    '  parallel: 1',
    '  budget: { trials: 4, minutes: 10 }',
    '  pruning: { enabled: false }',
    '  space:',
    '    train.lr: { type: float, low: 0.005, high: 0.05, log: true }',
    '',
  ].join('\n');
  const paramsPath = path.join(dir, 'params.yaml');
  fs.writeFileSync(paramsPath, text);
  writeFeatureFixture(path.join(dir, 'out', 'features'), { separation: 1.2, seed: 4 });
  const put = (key: string, name: string, body: string) =>
    world.gcs.putObject('bkt', `hostile/trials/${key}/${name}`, Buffer.from(body));
  // A perfect score beside a trial that did not earn it.
  const perfect = '{"value":1,"metrics":{"val_accuracy":1},"pruned":false,"epochs":4,"curve":[1,1,1,1]}\n';
  const held: Record<string, FakeCustomJob> = {};
  hold = async (job) => {
    const trial = job.labels['lockstep-trial'];
    held[trial] = job;
    const key = keyOf(job);
    if (trial === '1') {
      put(key, 'epochs/000001.json', '{"epoch":1,"value":"0.99"}');
      put(key, 'outcome.json', perfect);
      fs.appendFileSync(paramsPath, '# edited while tuning\n');
      await cancelled(job, 30_000);
    } else if (trial === '2') {
      put(key, 'spec.json', '{"study":"another"}');
      put(key, 'outcome.json', perfect);
    }
  };
  const before = world.jobs.jobs.size;
  const r = await cli(dir, 'tune', '--no-repro', '--json');
  hold = undefined;
  await world.jobs.idle();
  expect(r.code, r.err).toBe(0);
  const study = JSON.parse(r.out) as {
    trials: { number: number; error?: string; value: number }[];
    best: { number: number };
    improved: boolean;
    paramsUpdated: boolean;
    paramsChanged?: boolean;
  };
  expect(world.jobs.jobs.size - before).toBe(4);
  expect(study.trials.map((t) => t.number)).toEqual([0, 1, 2, 3]);

  // Trial 1: the garbage epoch fails it, in one line naming the file; its job is cancelled once.
  expect(study.trials[1].error).toMatch(
    /hostile\/trials\/[0-9a-f]{64}\/epochs\/000001\.json: not a trial epoch/,
  );
  expect(study.trials[1].error).not.toContain('\n');
  expect(cancelsOf(held['1'])).toBe(1);
  expect(held['1'].state).toBe('JOB_STATE_CANCELLED');

  // Trial 2: its job failed on the spec; the outcome.json beside it is not its result.
  expect(held['2'].state).toBe('JOB_STATE_FAILED');
  expect(study.trials[2].error).toMatch(/Vertex AI job failed/);
  expect(cancelsOf(held['2'])).toBe(0);

  // The study went on: trial 3 ran and beat the baseline; no failed trial is the best.
  expect(study.trials[3].error).toBeUndefined();
  expect(study.improved).toBe(true);
  expect(study.best.number).toBe(3);

  // params.yaml was edited while the study ran: this study does not overwrite the edit.
  expect(study.paramsUpdated).toBe(false);
  expect(study.paramsChanged).toBe(true);
  expect(fs.readFileSync(paramsPath, 'utf8')).toBe(text + '# edited while tuning\n');
}, 240_000);

it('two tunes started at once on the same repo get trial jobs of their own (no shared trial keys)', async () => {
  process.env.LOCKSTEP_REMOTE = 'gs://bkt/twice';
  const dir = await createComputeRepo('compute:\n  tune: { backend: vertex, machine_type: n1-standard-8 }\n');
  repos.push(dir);
  fs.writeFileSync(
    path.join(dir, 'params.yaml'),
    [
      'train: { arch: mlp, epochs: 2, batch_size: 16, lr: 0.01, units: 8, patience: 0, seed: 1, backend: cpu }',
      'tune:',
      '  objective: { metric: val_accuracy, direction: maximize }',
      '  space:',
      '    train.lr: { type: float, low: 0.005, high: 0.05 }',
      '',
    ].join('\n'),
  );
  writeFeatureFixture(path.join(dir, 'out', 'features'), { separation: 1.2, seed: 4 });
  const before = world.jobs.jobs.size;
  // The same second, the same baseline trial: only the study tells the two apart.
  const [a, b] = await Promise.all([
    cli(dir, 'tune', '--no-repro', '--json', '--trials', '1'),
    cli(dir, 'tune', '--no-repro', '--json', '--trials', '1'),
  ]);
  await world.jobs.idle();
  expect(a.code, a.err).toBe(0);
  expect(b.code, b.err).toBe(0);
  const jobs = [...world.jobs.jobs.values()].slice(before);
  expect(jobs).toHaveLength(2);
  expect(new Set(jobs.map(keyOf)).size).toBe(2);
  expect(new Set(jobs.map((j) => j.labels['lockstep-study'])).size).toBe(2);
  expect(jobs.every((j) => j.state === 'JOB_STATE_SUCCEEDED')).toBe(true);
}, 120_000);
