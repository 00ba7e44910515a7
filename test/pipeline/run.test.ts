import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { assertRunSucceeded } from '../../lib/pipeline/run.ts';
import { readLockfile } from '../../lib/lockfile.ts';
import { RefusedError, StageError } from '../../lib/errors.ts';
import { Cache } from '../../lib/store/cache.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { createPipelineRepo, runFixture, takeRuns } from './helpers.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

const params = (lr: number) => `data:\n  seed: 1\ntrain:\n  lr: ${lr}\n  epochs: 3\n`;

function statuses(report: Awaited<ReturnType<typeof runFixture>>): Record<string, string> {
  return Object.fromEntries(report.stages.map((s) => [s.name, s.status]));
}

describe('runner', () => {
  it('runner runs everything once, then skips what is up to date', async () => {
    t = await createPipelineRepo();
    const first = await runFixture(t);
    expect(first.ok).toBe(true);
    expect(takeRuns(t)).toEqual(['evaluate', 'gate', 'prepare', 'report', 'train']);
    const lf = readLockfile(t.repo);
    expect(Object.keys(lf.stages).sort()).toEqual(['evaluate', 'gate', 'prepare', 'report', 'train']);
    expect(lf.stages.train!.params).toEqual({ 'train.epochs': 3, 'train.lr': 0.01 });
    expect(lf.stages.prepare!.outs[0]).toMatchObject({ path: 'out/prepared', nfiles: 4, dir: true });
    // metrics: numbers only, dotted keys
    expect(lf.stages.evaluate!.metrics).toEqual({ accuracy: 1, 'f1.macro': 0.5 });
    const cache = new Cache(t.repo);
    for (const s of Object.values(lf.stages))
      for (const o of s.outs) expect(cache.hasSync(o.hash)).toBe(true);
    const second = await runFixture(t);
    expect(takeRuns(t)).toEqual([]);
    expect(new Set(Object.values(statuses(second)))).toEqual(new Set(['skipped']));
  });

  it('runner restores outputs from the run-cache when params switch back, without re-running', async () => {
    t = await createPipelineRepo(params(0.01));
    await runFixture(t);
    const lockA = t.read('artifacts.lock.yaml');
    const modelA = t.read('out/model/weights.txt');
    takeRuns(t);
    t.write('params.yaml', params(0.02));
    await runFixture(t);
    expect(takeRuns(t)).toEqual(['evaluate', 'gate', 'train']);
    expect(t.read('out/model/weights.txt')).not.toBe(modelA);
    t.write('params.yaml', params(0.01));
    const back = await runFixture(t);
    expect(takeRuns(t)).toEqual([]);
    expect(statuses(back)).toMatchObject({
      train: 'restored',
      evaluate: 'restored',
      gate: 'restored',
      prepare: 'skipped',
    });
    expect(t.read('out/model/weights.txt')).toBe(modelA);
    expect(t.read('artifacts.lock.yaml')).toBe(lockA);
    expect(fs.readdirSync(path.join(t.root, '.lockstep/runs')).length).toBe(8);
  });

  it('runner switching git branches back and forth costs no stage runs', async () => {
    t = await createPipelineRepo(params(0.01));
    await runFixture(t);
    t.commit('run on main');
    t.git('checkout', '-q', '-b', 'exp');
    t.write('params.yaml', params(0.03));
    await runFixture(t);
    t.commit('run on exp');
    takeRuns(t);
    t.git('checkout', '-q', 'main');
    const onMain = await runFixture(t);
    t.git('checkout', '-q', 'exp');
    const onExp = await runFixture(t);
    expect(takeRuns(t)).toEqual([]);
    expect(onMain.ok && onExp.ok === false).toBe(true); // lr 0.03 fails the gate on exp
    expect(t.git('status', '--porcelain')).toBe('');
  });

  it('runner stops the dependents of a failing stage, names them and keeps earlier good entries', async () => {
    t = await createPipelineRepo(params(0.01));
    await runFixture(t);
    const goodTrain = readLockfile(t.repo).stages.train;
    takeRuns(t);
    t.write('params.yaml', params(0.02));
    t.write('code/prepare.txt', 'prepare v2\n');
    t.write('fail-train', '');
    const report = await runFixture(t);
    expect(report.ok).toBe(false);
    expect(statuses(report)).toEqual({
      prepare: 'ran',
      train: 'failed',
      evaluate: 'not run',
      gate: 'not run',
      report: 'skipped',
    });
    expect(report.failures).toEqual([
      { stage: 'train', message: 'train was told to fail', skipped: ['evaluate', 'gate'] },
    ]);
    expect(() => assertRunSucceeded(report)).toThrow(StageError);
    expect(() => assertRunSucceeded(report)).toThrow(
      'train failed: train was told to fail. Skipped: evaluate, gate.',
    );
    const lf = readLockfile(t.repo);
    // prepare's new entry was written before train failed; train keeps its last good entry
    expect(lf.stages.prepare!.code).not.toBe(undefined);
    expect(lf.stages.train).toEqual(goodTrain);
    expect(takeRuns(t)).toEqual(['prepare', 'train']);
    fs.rmSync(path.join(t.root, 'fail-train'));
    const retry = await runFixture(t);
    expect(retry.failures).toEqual([]);
    expect(statuses(retry)).toMatchObject({ prepare: 'skipped', train: 'ran', evaluate: 'ran', gate: 'ran' });
  });

  it('runner locks a refusing gate, exits with its summary, and keeps refusing when skipped', async () => {
    t = await createPipelineRepo(params(0.05));
    const report = await runFixture(t);
    expect(report.refused).toEqual([{ stage: 'gate', summary: 'accuracy 0.600 < 0.9' }]);
    expect(readLockfile(t.repo).stages.gate).toBeDefined();
    expect(() => assertRunSucceeded(report)).toThrow(RefusedError);
    expect(() => assertRunSucceeded(report)).toThrow('gate: accuracy 0.600 < 0.9');
    const again = await runFixture(t);
    expect(statuses(again).gate).toBe('skipped');
    expect(again.ok).toBe(false);
  });

  it('runner runs independent stages in parallel within the job bound', async () => {
    t = await createPipelineRepo();
    const { reproduce } = await import('../../lib/pipeline/run.ts');
    const { memoryOutput } = await import('../../lib/output.ts');
    const { loadParams } = await import('../../lib/params.ts');
    let running = 0;
    let peak = 0;
    let started = 0;
    let jobsNow = 1;
    // Each stage also stays running until as many run at once as the bound allows (or all four
    // have started), bounded at 10 s: a slow start of the next stage cannot outlast its sleep.
    const parallelEnough = async () => {
      const deadline = Date.now() + 10_000;
      while (running < jobsNow && started < 4 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 2));
      }
    };
    // Four independent stages and one that depends on all of them.
    const stages = ['a', 'b', 'c', 'd'].map((name) => ({
      name,
      description: name,
      code: ['code/report.txt'],
      deps: ['data/input.txt'],
      params: [],
      outs: [`out/${name}.txt`],
      async run(ctx: { abs(rel: string): string }) {
        running++;
        started++;
        peak = Math.max(peak, running);
        // Held a while in any case, so that a runner starting more than the bound is seen.
        await new Promise((r) => setTimeout(r, 60));
        await parallelEnough();
        fs.writeFileSync(ctx.abs(`out/${name}.txt`), name);
        running--;
      },
    }));
    let sawAllDone = false;
    const join = {
      name: 'join',
      description: 'join',
      code: ['code/report.txt'],
      deps: ['out/a.txt', 'out/b.txt', 'out/c.txt', 'out/d.txt'],
      params: [],
      outs: ['out/join.txt'],
      async run(ctx: { abs(rel: string): string }) {
        sawAllDone =
          running === 0 && ['a', 'b', 'c', 'd'].every((n) => fs.existsSync(ctx.abs(`out/${n}.txt`)));
        fs.writeFileSync(ctx.abs('out/join.txt'), 'j');
      },
    };
    const params = loadParams(t.repo);
    for (const [jobs, expected] of [
      [1, 1],
      [2, 2],
      [3, 3],
    ] as const) {
      peak = 0;
      started = 0;
      jobsNow = jobs;
      const report = await reproduce(t.repo, [...stages, join], {
        params,
        out: memoryOutput(),
        jobs,
        force: true,
      });
      expect(report.ok).toBe(true);
      expect(peak, `jobs ${jobs}`).toBe(expected);
      expect(sawAllDone).toBe(true);
    }
  });

  it('runner locks the code fingerprint as it is after a stage that writes into its own code', async () => {
    t = await createPipelineRepo();
    const { loadParams } = await import('../../lib/params.ts');
    const { pipeline } = await import('./fixtures/pipeline.ts');
    const { reproduce } = await import('../../lib/pipeline/run.ts');
    const { memoryOutput } = await import('../../lib/output.ts');
    const params = loadParams(t.repo);
    const stages = pipeline(params);
    const report = stages.find((s) => s.name === 'report')!;
    const inner = report.run;
    report.code = ['code/report.txt', 'code/report-extra'];
    t.write('code/report-extra/keep.txt', 'x');
    report.run = async (ctx) => {
      fs.writeFileSync(ctx.abs('code/report-extra/inferred.yaml'), 'schema: inferred\n');
      return inner(ctx);
    };
    const run = () => reproduce(t!.repo, stages, { params, out: memoryOutput(), targets: ['report'] });
    expect(statuses(await run())).toEqual({ report: 'ran' });
    expect(statuses(await run())).toEqual({ report: 'skipped' });
  });

  it('runner removes stale outs before a stage runs', async () => {
    t = await createPipelineRepo();
    await runFixture(t);
    t.write('out/prepared/leftover.txt', 'stale');
    t.write('data/input.txt', 'one\n');
    await runFixture(t);
    expect(fs.readdirSync(path.join(t.root, 'out/prepared'))).toEqual(['shard-0.txt']);
  });
});
