import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import fs from 'node:fs';
import { expandGrid } from '../../lib/experiments/grid.ts';
import { claimNext, listQueue } from '../../lib/experiments/queue.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { cliIn, createExperimentRepo, PIPE } from './helpers.ts';

let t: TmpRepo;
const cli = (...args: string[]) => cliIn(t.root, ...args);
const status = async () =>
  JSON.parse((await cli('exp', 'queue', 'status', '--json')).out) as Array<{
    name: string;
    state: string;
    overrides: Record<string, unknown>;
  }>;

describe('expandGrid', () => {
  it.each([
    [['train.lr=0.1'], [{ 'train.lr': 0.1 }]],
    [
      ['train.lr=0.1,0.2', 'train.units=8,16'],
      [
        { 'train.lr': 0.1, 'train.units': 8 },
        { 'train.lr': 0.1, 'train.units': 16 },
        { 'train.lr': 0.2, 'train.units': 8 },
        { 'train.lr': 0.2, 'train.units': 16 },
      ],
    ],
    [['tags=[a,b]'], [{ tags: ['a', 'b'] }]],
    [['note="x,y"'], [{ note: 'x,y' }]],
    [['note="a,b",c'], [{ note: 'a,b' }, { note: 'c' }]],
    [["note=c,'d,e'"], [{ note: 'c' }, { note: 'd,e' }]],
    [['note="say \\"hi, there\\"",x'], [{ note: 'say "hi, there"' }, { note: 'x' }]],
    [['tags=[1,2],[3,4]'], [{ tags: [1, 2] }, { tags: [3, 4] }]],
    [["note=it's,ok"], [{ note: "it's" }, { note: 'ok' }]],
  ])('expandGrid %j is the product of the comma lists', (pairs, expected) => {
    expect(expandGrid(pairs)).toEqual(expected);
  });

  it('expandGrid rejects an empty value in a list', () => {
    expect(() => expandGrid(['train.lr=0.1,'])).toThrow(/empty value/);
  });

  it.each([['note="a,b'], ['tags=[1,2'], ['tags=1]']])(
    'expandGrid refuses %j: unbalanced quotes or brackets',
    (pair) => {
      expect(() => expandGrid([pair])).toThrow(/unbalanced quotes or brackets/);
    },
  );
});

describe('exp queue', () => {
  beforeEach(async () => {
    t = await createExperimentRepo('data:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\n');
  });

  afterEach(async () => {
    await t.cleanup();
  });

  it('exp run --queue queues the grid product; queue start -j 2 runs them all; status and logs tell', async () => {
    const q = await cli(
      'exp',
      'run',
      '--queue',
      '-S',
      'train.lr=0.02,0.03',
      '-S',
      'train.epochs=3',
      '--name',
      'g',
      ...PIPE,
    );
    expect(q.code, q.err).toBe(0);
    expect(q.out).toBe('queued 2 experiment(s): g-1, g-2');
    expect((await status()).map((e) => [e.name, e.state, e.overrides])).toEqual([
      ['g-1', 'queued', { 'train.lr': 0.02, 'train.epochs': 3 }],
      ['g-2', 'queued', { 'train.lr': 0.03, 'train.epochs': 3 }],
    ]);
    expect(t.git('for-each-ref', 'refs/exps/')).toBe('');
    const again = await cli('exp', 'run', '--queue', '-S', 'train.lr=0.02', '--name', 'g-1');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/"g-1" is already queued/);

    const run = await cli('exp', 'queue', 'start', '-j', '2');
    expect(run.code, run.err).toBe(0);
    expect(run.out).toBe('queue: 2 done, 0 failed');
    expect((await status()).map((e) => e.state)).toEqual(['done', 'done']);
    const show = JSON.parse((await cli('exp', 'show', '--json')).out);
    const acc = Object.fromEntries(
      show.rows.map((r: { name: string; metrics: { accuracy: number } }) => [r.name, r.metrics.accuracy]),
    );
    expect(acc['g-1']).toBeCloseTo(0.9, 10);
    expect(acc['g-2']).toBeCloseTo(0.8, 10);
    expect((await cli('exp', 'queue', 'logs', 'g-2')).out).toMatch(/exp g-2: running in a worktree/);
    expect(t.git('worktree', 'list').split('\n')).toHaveLength(1);
    expect((await cli('exp', 'queue', 'remove', '--all')).out).toMatch(/removed 2 queue entries/);
    expect(await status()).toEqual([]);
  });

  it('a second queue start never re-runs an entry another one finished (or removed) after its listing', async () => {
    for (const n of ['a', 'b'])
      expect((await cli('exp', 'run', '--queue', '-S', 'train.lr=0.02', '--name', n, ...PIPE)).code).toBe(0);
    const listed = await listQueue(t.repo);
    expect(listed.map((e) => e.state)).toEqual(['queued', 'queued']);
    // Meanwhile another worker finished "a" and dropped its claim, and "b" was removed.
    const dir = path.join(t.repo.stateDir, 'queue');
    const a = JSON.parse(fs.readFileSync(path.join(dir, 'a.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'a.json'), JSON.stringify({ ...a, state: 'done' }));
    expect((await cli('exp', 'queue', 'remove', 'b')).code).toBe(0);
    expect(claimNext(t.repo, listed)).toBeUndefined();
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.claim'))).toEqual([]);
    expect((await listQueue(t.repo)).map((e) => [e.name, e.state])).toEqual([['a', 'done']]);
  });

  it('a queue worker killed mid-run leaves its experiment queued, not recorded; the next start runs it', async () => {
    expect((await cli('exp', 'run', '--queue', '-S', 'train.lr=0.02', '--name', 'k', ...PIPE)).code).toBe(0);
    const child = spawn(
      process.execPath,
      [path.join(t.root, 'bin', 'lockstep.mjs'), 'exp', 'queue', 'start'],
      {
        cwd: t.root,
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    const exited = once(child, 'exit');
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker never started: ${stderr}`)), 60_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes('exp k: running in a worktree')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect((await status())[0]!.state).toBe('running');
    process.kill(-child.pid!, 'SIGKILL'); // the worker and the pipeline it spawned
    await exited;
    expect((await status()).map((e) => [e.name, e.state])).toEqual([['k', 'queued']]);
    expect(t.git('for-each-ref', 'refs/exps/')).toBe('');
    expect(t.git('worktree', 'list').split('\n')).toHaveLength(1);

    const run = await cli('exp', 'queue', 'start');
    expect(run.code, run.err).toBe(0);
    expect((await status())[0]!.state).toBe('done');
    expect(t.git('for-each-ref', '--format=%(refname)', 'refs/exps/')).toBe('refs/exps/k');
  });
});
