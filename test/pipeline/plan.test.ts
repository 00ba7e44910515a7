import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planRun } from '../../lib/pipeline/plan.ts';
import { buildGraph } from '../../lib/pipeline/graph.ts';
import { loadParams } from '../../lib/params.ts';
import { ConfigError } from '../../lib/errors.ts';
import type { StageDef } from '../../lib/types.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { createPipelineRepo, runFixture } from './helpers.ts';
import { pipeline } from './fixtures/pipeline.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

async function planReasons(repo: TmpRepo, options: { targets?: string[]; force?: boolean } = {}) {
  const params = loadParams(repo.repo);
  const plan = await planRun(repo.repo, pipeline(params), { params, ...options });
  return Object.fromEntries(plan.stages.map((s) => [s.name, `${s.action}: ${s.reason}`]));
}

const rm = (t: TmpRepo, rel: string) => fs.rmSync(path.join(t.root, rel), { recursive: true, force: true });

describe('plan', () => {
  it('plan gives every stage "never run" before the first run', async () => {
    t = await createPipelineRepo();
    expect(await planReasons(t)).toEqual({
      prepare: 'run: never run',
      train: 'run: never run',
      evaluate: 'run: never run',
      gate: 'run: never run',
      report: 'run: never run',
    });
  });

  // Each case changes one thing after a complete run and names the reasons it must produce.
  const cases: {
    name: string;
    change: (t: TmpRepo) => void;
    options?: { targets?: string[]; force?: boolean };
    expected: Record<string, string>;
  }[] = [
    {
      name: 'nothing changed',
      change: () => {},
      expected: {
        prepare: 'skip: up to date',
        train: 'skip: up to date',
        evaluate: 'skip: up to date',
        gate: 'skip: up to date',
        report: 'skip: up to date',
      },
    },
    {
      name: 'code changed',
      change: (t) => t.write('code/train.txt', 'train v2\n'),
      expected: {
        train: 'run: code changed',
        evaluate: 'run: upstream train will run',
        gate: 'run: upstream evaluate will run',
        prepare: 'skip: up to date',
      },
    },
    {
      name: 'params changed',
      change: (t) => t.write('params.yaml', 'data:\n  seed: 1\ntrain:\n  lr: 0.02\n  epochs: 4\n'),
      expected: {
        train: 'run: params train.epochs, train.lr changed',
        evaluate: 'run: upstream train will run',
        report: 'skip: up to date',
      },
    },
    {
      name: 'dep changed',
      change: (t) => t.write('data/input.txt', 'alpha\nbeta\n'),
      expected: {
        prepare: 'run: dep data/input.txt changed',
        report: 'run: dep data/input.txt changed',
        train: 'run: upstream prepare will run',
      },
    },
    {
      name: 'out missing',
      change: (t) => rm(t, 'out/model'),
      expected: {
        train: 'restore: out out/model missing',
        evaluate: 'skip: up to date',
        gate: 'skip: up to date',
      },
    },
    {
      name: 'out modified',
      change: (t) => t.write('out/report.txt', 'edited'),
      expected: { report: 'restore: out out/report.txt changed' },
    },
    {
      name: 'dep out of an upstream restored',
      change: (t) => rm(t, 'out/prepared'),
      expected: { prepare: 'restore: out out/prepared missing', train: 'skip: up to date' },
    },
    {
      name: 'forced',
      change: () => {},
      options: { force: true, targets: ['train'] },
      expected: { prepare: 'run: forced', train: 'run: forced' },
    },
    {
      name: 'targets select upstream only',
      change: (t) => t.write('code/gate.txt', 'gate v2\n'),
      options: { targets: ['evaluate'] },
      expected: { prepare: 'skip: up to date', train: 'skip: up to date', evaluate: 'skip: up to date' },
    },
  ];

  it.each(cases)('plan reason: $name', async ({ change, options, expected }) => {
    t = await createPipelineRepo();
    const report = await runFixture(t);
    expect(report.ok).toBe(true);
    change(t);
    const reasons = await planReasons(t, options);
    for (const [stage, reason] of Object.entries(expected)) expect(reasons[stage], stage).toBe(reason);
    if (options?.targets) expect(Object.keys(reasons).sort()).toEqual(Object.keys(expected).sort());
  });

  it('plan reports a cache hit when params switch back to an earlier run', async () => {
    t = await createPipelineRepo();
    await runFixture(t);
    t.write('params.yaml', 'data:\n  seed: 1\ntrain:\n  lr: 0.02\n  epochs: 3\n');
    await runFixture(t);
    t.write('params.yaml', 'data:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\n');
    expect((await planReasons(t)).train).toBe('restore: params train.lr changed; restored from run-cache');
  });

  it('plan rejects a missing code path, an unknown params key and a missing dep clearly', async () => {
    t = await createPipelineRepo();
    const params = loadParams(t.repo);
    const stages = pipeline(params);
    rm(t, 'code/gate.txt');
    await expect(planRun(t.repo, stages, { params })).rejects.toThrow(
      'stage gate: code path does not exist "code/gate.txt"',
    );
    t.write('code/gate.txt', 'x');
    stages[0]!.params = ['train.nope'];
    await expect(planRun(t.repo, stages, { params })).rejects.toThrow(
      'stage prepare: params key "train.nope" does not exist',
    );
    stages[0]!.params = ['data.seed'];
    await runFixture(t);
    rm(t, 'data/input.txt');
    const plan = await planRun(t.repo, stages, { params });
    expect(plan.stages.find((s) => s.name === 'report')!.reason).toBe('dep data/input.txt missing');
  });
});

describe('graph', () => {
  const stage = (name: string, deps: string[], outs: string[]): StageDef => ({
    name,
    description: name,
    code: [],
    deps,
    params: [],
    outs,
    run: async () => {},
  });

  it('graph orders stages by path containment of deps in outs', () => {
    const g = buildGraph([
      stage('c', ['out/b/x.json'], ['out/c']),
      stage('b', ['out/a'], ['out/b']),
      stage('a', [], ['out/a']),
    ]);
    expect(g.order.map((s) => s.name)).toEqual(['a', 'b', 'c']);
    expect(g.upstream.get('c')).toEqual(['b']);
  });

  it.each([
    [
      'a cycle',
      [stage('a', ['out/b'], ['out/a']), stage('b', ['out/a'], ['out/b'])],
      /stages form a cycle "a -> b -> a"|stages form a cycle "b -> a -> b"/,
    ],
    [
      'duplicate outs',
      [stage('a', [], ['out/x']), stage('b', [], ['out/x/y'])],
      /out "out\/x\/y" of stage b overlaps out "out\/x" of stage a/,
    ],
    ['duplicate names', [stage('a', [], ['out/x']), stage('a', [], ['out/y'])], /duplicate stage name "a"/],
  ])('graph rejects %s', (_n, stages, pattern) => {
    expect(() => buildGraph(stages)).toThrow(ConfigError);
    expect(() => buildGraph(stages)).toThrow(pattern);
  });
});
