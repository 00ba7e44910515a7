import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  emptyLockfile,
  lockfileAtRev,
  parseLockfile,
  readLockfile,
  serializeLockfile,
  writeLockfile,
} from '../lib/lockfile.ts';
import { ConfigError } from '../lib/errors.ts';
import type { Lockfile } from '../lib/types.ts';
import { createTmpRepo, type TmpRepo } from './support/tmp-repo.ts';

const h = (c: string) => c.repeat(64);

function sample(): Lockfile {
  return {
    schema: 1,
    data: {
      'data/z': { hash: h('1'), size: 3, nfiles: 1 },
      'data/a': { hash: h('2'), size: 9, nfiles: 2, dir: true },
    },
    stages: {
      train: {
        code: h('3'),
        deps: [
          { path: 'out/z', hash: h('4'), size: 1, nfiles: 1 },
          { path: 'out/a', hash: h('5'), size: 2, nfiles: 1 },
        ],
        params: { 'train.lr': 0.01, 'gate.thresholds': [{ min: 1, metric: 'x' }], 'a.b': 'c' },
        outs: [{ path: 'out/model', hash: h('6'), size: 10, nfiles: 2, dir: true }],
        metrics: { 'f1.macro': 0.5, accuracy: 0.75 },
      },
      data: { code: h('7'), deps: [], params: {}, outs: [] },
    },
  };
}

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

describe('lockfile', () => {
  it('lockfile serialization is deterministic whatever the key order', () => {
    const a = sample();
    const b = sample();
    b.stages = {
      data: b.stages.data!,
      train: { ...b.stages.train!, deps: [...b.stages.train!.deps].reverse() },
    };
    b.data = { 'data/a': b.data['data/a']!, 'data/z': b.data['data/z']! };
    const text = serializeLockfile(a);
    expect(serializeLockfile(b)).toBe(text);
    expect(serializeLockfile(parseLockfile(text))).toBe(text);
    // stages and data keys sorted, deps sorted by path
    expect(text.indexOf('  data:\n')).toBeLessThan(text.indexOf('  train:\n'));
    expect(text.indexOf('path: out/a')).toBeLessThan(text.indexOf('path: out/z'));
    expect(text.indexOf('a.b:')).toBeLessThan(text.indexOf('train.lr:'));
  });

  it('lockfile parse round-trips every field', () => {
    const expected = sample();
    expected.stages.train!.deps.reverse(); // written sorted by path
    expect(parseLockfile(serializeLockfile(sample()))).toEqual(expected);
  });

  it.each([
    [
      'malformed YAML',
      'schema: 1\nstages: [\n  a: b\n',
      /^artifacts\.lock\.yaml:\d+: invalid YAML: .*\. Fix the syntax/,
    ],
    [
      'future schema version',
      'schema: 2\ndata: {}\nstages: {}\n',
      /^artifacts\.lock\.yaml:1: schema: unknown schema version 2\. .*upgrade lockstep\.$/,
    ],
    ['missing schema', 'data: {}\n', /^artifacts\.lock\.yaml:1: schema: missing/],
    [
      'wrong field type',
      `schema: 1\nstages:\n  train:\n    code: ${h('a')}\n    deps: []\n    params: {}\n    outs: 7\n`,
      /^artifacts\.lock\.yaml:7: stages\.train\.outs: expected array, got 7\./,
    ],
    [
      'bad hash',
      `schema: 1\ndata:\n  x:\n    hash: nothex\n    size: 1\n    nfiles: 1\n`,
      /^artifacts\.lock\.yaml:4: data\.x\.hash: /,
    ],
    ['unknown key', 'schema: 1\nstagez: {}\n', /^artifacts\.lock\.yaml:2: stagez: unknown key "stagez"/],
    ['not a mapping', '- 1\n', /^artifacts\.lock\.yaml:1: expected a mapping/],
  ])('lockfile parse rejects %s with a one-line error naming the line', (_name, text, pattern) => {
    let caught: unknown;
    try {
      parseLockfile(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const message = (caught as Error).message;
    expect(message).toMatch(pattern);
    expect(message).not.toContain('\n');
  });

  it('lockfile read gives an empty lockfile when the file is missing', async () => {
    t = await createTmpRepo();
    expect(readLockfile(t.repo)).toEqual(emptyLockfile());
  });

  it('lockfile write is atomic and leaves no temp files', async () => {
    t = await createTmpRepo();
    await writeLockfile(t.repo, sample());
    expect(readLockfile(t.repo)).toEqual(parseLockfile(serializeLockfile(sample())));
    const lf = sample();
    lf.stages.train!.metrics = { accuracy: 0.9 };
    await writeLockfile(t.repo, lf);
    expect(readLockfile(t.repo).stages.train!.metrics).toEqual({ accuracy: 0.9 });
    expect(fs.readdirSync(t.root).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    expect(fs.readFileSync(path.join(t.root, 'artifacts.lock.yaml'), 'utf8')).toBe(serializeLockfile(lf));
  });

  it('lockfile at a revision is read from git objects', async () => {
    t = await createTmpRepo();
    const before = t.git('rev-parse', 'HEAD');
    t.write('artifacts.lock.yaml', serializeLockfile(sample()));
    const after = t.commit('lock');
    t.write('artifacts.lock.yaml', 'schema: 1\n');
    expect(await lockfileAtRev(t.repo, before)).toEqual(emptyLockfile());
    expect(Object.keys((await lockfileAtRev(t.repo, after)).stages)).toEqual(['data', 'train']);
    await expect(lockfileAtRev(t.repo, 'no-such-branch')).rejects.toThrow(
      /unknown revision "no-such-branch"/,
    );
  });
});
