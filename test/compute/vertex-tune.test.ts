/**
 * `lockstep tune` with `compute.tune.backend: vertex` against the fakes (fake GCS, fake Vertex AI
 * JobService running each trial job as a `lockstep job trial` process of this checkout): trials
 * as parallel CustomJobs, the median pruner deciding here and cancelling pruned trials' jobs,
 * params.yaml written only when better, the same trials as a local tune, Ctrl-C.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { writeFeatureFixture } from '../ml/model-fixtures.ts';
import { cli, createComputeRepo, removeRepo, spawnCli, startWorld, type ComputeWorld } from './setup.ts';
import type { FakeCustomJob } from '../support/fake-vertex-jobs.ts';

const CONFIG = 'compute:\n  tune: { backend: vertex, machine_type: n1-standard-8 }\n';

let world: ComputeWorld;
const repos: string[] = [];

beforeAll(async () => {
  world = await startWorld('bkt');
}, 30_000);

afterAll(async () => {
  await world?.close();
  await Promise.all(repos.map(removeRepo));
});

/** A compute repo with `params` and a small featurized data set in out/features. */
async function tuneRepo(params: string): Promise<string> {
  const dir = await createComputeRepo(CONFIG);
  repos.push(dir);
  fs.writeFileSync(path.join(dir, 'params.yaml'), params);
  writeFeatureFixture(path.join(dir, 'out', 'features'), { separation: 1.2, seed: 4 });
  return dir;
}

function tuneParams(train: string, tune: string): string {
  return [
    '# tuned on Vertex AI',
    'train:',
    ...train.split('\n').map((l) => `  ${l}`),
    'tune:',
    '  objective: { metric: val_accuracy, direction: maximize }',
    '  sampler: random',
    '  seed: 3',
    '  parallel: 2',
    ...tune.split('\n').map((l) => `  ${l}`),
    '',
  ].join('\n');
}

/** Jobs created since `before` (the fake's create order). */
function jobsSince(before: number): FakeCustomJob[] {
  return [...world.jobs.jobs.values()].slice(before);
}

const cancelsOf = (job: FakeCustomJob) => world.jobs.calls.filter((c) => c === `cancel ${job.name}`).length;

describe('lockstep tune on vertex', () => {
  it('refuses a bad --parallel, --trials or --minutes, a bad compute.tune machine type and a trial key that is a path, in one line before any job or featurize', async () => {
    const text = tuneParams(
      'arch: mlp\nepochs: 2\nbatch_size: 16\nlr: 0.01\nunits: 8\npatience: 0\nseed: 1\nbackend: cpu',
      [
        'budget: { trials: 2, minutes: 10 }',
        'space:',
        '  train.lr: { type: float, low: 0.005, high: 0.05 }',
      ].join('\n'),
    );
    const dir = await tuneRepo(text);
    const before = world.jobs.jobs.size;
    for (const [flag, value] of [
      ['--parallel', '0'],
      ['--parallel', '-1'],
      ['--parallel', 'abc'],
      ['--parallel', '2.5'],
      ['--parallel', '1000'],
      ['--trials', '0'],
      ['--trials', 'x'],
      ['--minutes', '-5'],
      ['--folds', '1.5'],
    ]) {
      const r = await cli(dir, 'tune', '--no-repro', flag, value);
      expect(r.code, `${flag} ${value}: ${r.err}`).toBe(2);
      expect(r.err.trim().split('\n'), `${flag} ${value}`).toHaveLength(1);
      expect(r.err).toContain(`${flag} "${value}"`);
    }
    fs.writeFileSync(
      path.join(dir, '.lockstep/config.yaml'),
      'compute:\n  tune: { backend: vertex, machine_type: n1-superfast-8 }\n',
    );
    fs.rmSync(path.join(dir, 'out'), { recursive: true, force: true });
    const bad = await cli(dir, 'tune');
    expect(bad.code, bad.err).toBe(1);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/compute\.tune\.machine_type: unknown machine type/);
    // Nothing ran: no featurize before the refusal, no job.
    expect(fs.existsSync(path.join(dir, 'out'))).toBe(false);
    const trial = await cli(dir, 'job', 'trial', '--remote', 'gs://bkt/keys', '--key', '../../jobs/x');
    expect(trial.code).toBe(2);
    expect(trial.err).toMatch(/--key: not a trial key/);
    expect(world.jobs.jobs.size).toBe(before);
    expect(fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8')).toBe(text);
  }, 60_000);

  it('runs 4 trials as CustomJobs, at most 2 at once, cancels each pruned trial job once, and leaves params.yaml when no trial is better', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/prune';
    const text = tuneParams(
      'arch: mlp\nepochs: 12\nbatch_size: 16\nlr: 0.02\nunits: 32\npatience: 0\nseed: 1\nbackend: cpu',
      [
        'budget: { trials: 4, minutes: 10 }',
        'pruning: { enabled: true, warmup_epochs: 3, startup_trials: 1 }',
        'space:',
        '  train.lr: { type: float, low: 1.0e-7, high: 2.0e-7, log: true }',
      ].join('\n'),
    );
    const dir = await tuneRepo(text);
    const before = world.jobs.jobs.size;
    world.jobs.maxActive = 0;
    const r = await cli(dir, 'tune', '--no-repro', '--json');
    expect(r.code, r.err).toBe(0);
    await world.jobs.idle();
    const study = JSON.parse(r.out);
    const jobs = jobsSince(before);
    expect(jobs).toHaveLength(4);
    expect(world.jobs.maxActive).toBe(2);
    expect(jobs.every((j) => j.jobSpec.workerPoolSpecs[0].machineSpec.machineType === 'n1-standard-8')).toBe(
      true,
    );
    const pruned = study.trials.filter((t: { pruned: boolean }) => t.pruned);
    expect(pruned.length).toBeGreaterThanOrEqual(1);
    for (const t of study.trials as { number: number; pruned: boolean; epochs: number }[]) {
      const job = jobs.find((j) => j.labels['lockstep-trial'] === String(t.number))!;
      expect(job, `job of trial ${t.number}`).toBeDefined();
      expect(cancelsOf(job), `cancels of trial ${t.number}`).toBe(t.pruned ? 1 : 0);
      expect(job.state).toBe(t.pruned ? 'JOB_STATE_CANCELLED' : 'JOB_STATE_SUCCEEDED');
      if (t.pruned) expect(t.epochs).toBeGreaterThan(3);
      if (t.pruned) expect(t.epochs).toBeLessThan(12);
    }
    expect(study.improved).toBe(false);
    expect(study.paramsUpdated).toBe(false);
    expect(fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8')).toBe(text);
  }, 300_000);

  it('writes params.yaml when a trial is better, with the same trials and values as a local tune of the same seed', async () => {
    process.env.LOCKSTEP_REMOTE = 'gs://bkt/better';
    const text = tuneParams(
      'arch: mlp\nepochs: 8\nbatch_size: 16\nlr: 0.00005\nunits: 8\npatience: 0\nseed: 1\nbackend: cpu',
      [
        'budget: { trials: 4, minutes: 10 }',
        'pruning: { enabled: false }',
        'space:',
        '  train.lr: { type: float, low: 0.005, high: 0.05, log: true }',
      ].join('\n'),
    );
    const dir = await tuneRepo(text);
    const before = world.jobs.jobs.size;
    const remote = await cli(dir, 'tune', '--no-repro', '--json');
    expect(remote.code, remote.err).toBe(0);
    expect(jobsSince(before)).toHaveLength(4);
    const onVertex = JSON.parse(remote.out);
    expect(onVertex.improved).toBe(true);
    expect(onVertex.paramsUpdated).toBe(true);
    const written = fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8');
    expect(written).toContain('# tuned on Vertex AI');
    expect(written).not.toContain('lr: 0.00005');

    fs.writeFileSync(path.join(dir, 'params.yaml'), text);
    const local = await cli(dir, 'tune', '--no-repro', '--json', '--no-write', '--compute', 'local');
    expect(local.code, local.err).toBe(0);
    expect(jobsSince(before)).toHaveLength(4);
    const here = JSON.parse(local.out);
    type T = { number: number; params: unknown; value: number };
    const view = (s: { trials: T[] }) => s.trials.map((t) => ({ n: t.number, p: t.params, v: t.value }));
    expect(view(onVertex)).toEqual(view(here));
    expect(onVertex.best.number).toBe(here.best.number);
  }, 300_000);

  it('Ctrl-C cancels the running trial jobs once each and exits 130, params.yaml unchanged', async () => {
    // Trial 0 (the baseline, 2 epochs) ends quickly; the others train for thousands of epochs.
    const text = tuneParams(
      'arch: mlp\nepochs: 2\nbatch_size: 16\nlr: 0.01\nunits: 8\npatience: 0\nseed: 1\nbackend: cpu',
      [
        'budget: { trials: 4, minutes: 10 }',
        'pruning: { enabled: false }',
        'space:',
        '  train.epochs: { type: int, low: 5000, high: 6000 }',
      ].join('\n'),
    );
    const dir = await tuneRepo(text);
    const before = world.jobs.jobs.size;
    const cancels = world.jobs.count('cancel');
    let started = 0;
    const twoTrials = new Promise<void>((resolve) => {
      world.jobs.onRunning = () => {
        if (++started === 3) resolve();
      };
    });
    const run = spawnCli(dir, ['tune', '--no-repro'], { LOCKSTEP_REMOTE: 'gs://bkt/interrupt' });
    await Promise.race([twoTrials, run.done]);
    world.jobs.onRunning = undefined;
    const running = jobsSince(before).filter((j) => j.state === 'JOB_STATE_RUNNING');
    expect(running).toHaveLength(2);
    run.child.kill('SIGINT');
    const stop = setTimeout(() => run.child.kill('SIGKILL'), 200_000);
    const { code, err } = await run.done;
    clearTimeout(stop);
    expect(code, err).toBe(130);
    await world.jobs.idle();
    expect(err).toMatch(/tune: interrupted/);
    expect(world.jobs.count('cancel')).toBe(cancels + 2);
    for (const job of running) {
      expect(cancelsOf(job)).toBe(1);
      expect(job.state).toBe('JOB_STATE_CANCELLED');
    }
    // No trial started after the interrupt.
    expect(jobsSince(before)).toHaveLength(3);
    expect(fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8')).toBe(text);
  }, 300_000);
});
