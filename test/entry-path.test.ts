import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { entryPathProblem, pathSetProblem } from '../lib/entry-path.ts';
import { hashArtifact } from '../lib/store/artifacts.ts';
import { checkoutArtifact } from '../lib/store/checkout.ts';
import { Cache } from '../lib/store/cache.ts';
import { parseLockfile } from '../lib/lockfile.ts';
import { ConfigError, UnsafePathError } from '../lib/errors.ts';
import { downloadPrefix } from '../stages/ingest/gcs.ts';
import { GcsInput } from '../stages/batch/gcs-io.ts';
import { FakeGcs } from './support/fake-gcs.ts';
import { git, listObjects, makeRepo, rmrf, runStoreCli, tempDir, writeTree } from './store/helpers.ts';

const cleanup: string[] = [];
afterEach(() => cleanup.splice(0).forEach(rmrf));

describe('entry paths', () => {
  it.each([
    ['a.txt', undefined],
    ['dir/sub/file.wav', undefined],
    ['caf\u00e9/r\u00e9sum\u00e9.txt', undefined],
    ['', /empty path/],
    ['../x', /climbs out/],
    ['a/../../x', /climbs out/],
    ['/etc/passwd', /absolute/],
    ['C:/x', /absolute/],
    ['a\\b', /backslash/],
    ['a\u0000b', /control/],
    ['a\u001bb', /control/],
    ['a//b', /empty or "\." segment/],
    ['./a', /empty or "\." segment/],
    ['a/', /empty or "\." segment/],
    ['\udc00', /not valid Unicode/],
    ['x'.repeat(256), /segment longer than 255/],
    [`${'abcdefghij/'.repeat(100)}x`, /longer than 1024 bytes/],
    [`${'d/'.repeat(64)}x`, /deeper than 64/],
  ])('entry paths: %j -> %s', (p, problem) => {
    if (problem === undefined) expect(entryPathProblem(p)).toBeUndefined();
    else expect(entryPathProblem(p)).toMatch(problem);
  });

  it.each([
    [['a', 'b', 'c/d'], undefined],
    [['a', 'a'], /duplicate/],
    [['a', 'a/b'], /inside "a", which is a file/],
    [['a/b', 'a'], /inside "a", which is a file/],
    [['A.txt', 'a.txt'], /only by case/],
    [['caf\u00e9', 'cafe\u0301'], /Unicode normalization/],
    [['Data/a', 'data/b'], /directory "data" differs from "Data"/],
  ])('entry path sets: %j -> %s', (paths, problem) => {
    const got = pathSetProblem(paths);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got?.problem).toMatch(problem);
  });

  it.each([
    [
      'data key',
      'data:\n  ../escape:\n    hash: HASH\n    size: 1\n    nfiles: 1\n',
      /data: unsafe path \(path climbs out/,
    ],
    [
      'stage out',
      'stages:\n  s:\n    code: HASH\n    outs:\n      - path: /tmp/escape\n        hash: HASH\n        size: 1\n        nfiles: 1\n',
      /outs\.0\.path: unsafe path \(path is absolute\)/,
    ],
    [
      'stage dep',
      'stages:\n  s:\n    code: HASH\n    deps:\n      - path: "a\\\\b"\n        hash: HASH\n        size: 1\n        nfiles: 1\n',
      /deps\.0\.path: unsafe path \(path contains a backslash\)/,
    ],
  ])('lockfile paths: a %s that fails the path rules is a ConfigError', (_n, body, message) => {
    const text = `schema: 1\n${body.replaceAll('HASH', 'a'.repeat(64))}`;
    expect(() => parseLockfile(text)).toThrow(ConfigError);
    expect(() => parseLockfile(text)).toThrow(message);
  });
});

describe('gs:// object names', () => {
  let fake: FakeGcs;
  beforeAll(async () => {
    fake = await FakeGcs.start();
  });
  afterAll(async () => fake.close());

  it.each([
    ['climbing out', 'evil/../../../escape.wav', /climbs out/],
    ['a backslash', 'evil/a\\b.wav', /backslash/],
    ['a case clash', 'evil/Clip.wav', /only by case/],
    ['a "." segment', 'evil/./x.wav', /empty or "\." segment/],
    ['a ".." in the middle', 'evil/a/../b.wav', /climbs out/],
    ['an empty segment', 'evil//x.wav', /path is absolute|empty or "\." segment/],
    ['a newline', 'evil/x\n.wav', /control character/],
  ])(
    'gs:// object names: a name with %s is refused by ingest and batch input before anything is downloaded',
    async (_n, name, problem) => {
      fake.reset();
      fake.putObject('emo-data', 'evil/clip.wav', Buffer.from('RIFF'));
      fake.putObject('emo-data', name, Buffer.from('pwned'));
      const dest = path.join(tempDir(), 'staged');
      cleanup.push(path.dirname(dest));
      const err = await downloadPrefix('gs://emo-data/evil', dest, {
        apiEndpoint: fake.url,
        projectId: 'p',
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnsafePathError);
      expect((err as Error).message).toMatch(problem);
      expect((err as Error).message).toContain('gs://emo-data/evil');
      expect(fs.existsSync(dest)).toBe(false);
      expect(fake.count('download')).toBe(0);
      // Batch input lists through the same function.
      const input = new GcsInput('gs://emo-data/evil', { apiEndpoint: fake.url, projectId: 'p' });
      try {
        await expect(input.list()).rejects.toThrow(UnsafePathError);
      } finally {
        input.close();
      }
    },
  );
});

describe('symlinks', () => {
  it('symlinks: add and dep hashing refuse a link that leaves the repository, naming the link and its target', async () => {
    const repo = makeRepo({ git: true });
    const outside = tempDir();
    cleanup.push(repo.root, outside);
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'hello');
    writeTree(repo.root, { 'data/links/a.txt': 'a' });
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(repo.root, 'data/links/outside.txt'));
    const add = await runStoreCli(repo.root, 'add', 'data/links');
    expect(add.code).toBe(1);
    expect(add.stderr).toContain('data/links/outside.txt: symlink leads outside the repository');
    expect(add.stderr).toContain(path.join(outside, 'secret.txt'));
    expect(listObjects(repo.cacheDir)).toEqual([]);
    expect(fs.existsSync(repo.lockfilePath)).toBe(false);
    await expect(hashArtifact(repo, 'data/links')).rejects.toThrow(/symlink leads outside the repository/);
  });

  it('symlinks: a link inside the repository is followed, so the artifact holds the bytes it points at', async () => {
    const repo = makeRepo({ git: true });
    const remote = tempDir();
    const cloneParent = tempDir();
    cleanup.push(repo.root, remote, cloneParent);
    writeTree(repo.root, { 'shared/labels.csv': 'a,b\n', 'data/links/a.txt': 'a' });
    fs.symlinkSync('../../shared/labels.csv', path.join(repo.root, 'data/links/labels.csv'));
    const add = await runStoreCli(repo.root, 'add', 'data/links');
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/added data\/links \(2 files, 5 B\)/);
    expect((await runStoreCli(repo.root, 'push', '--remote', remote)).code).toBe(0);
    git(repo.root, 'add', '-A');
    git(repo.root, 'commit', '-qm', 'links');
    const clone = path.join(cloneParent, 'c');
    git(cloneParent, 'clone', '-q', repo.root, clone);
    const pull = await runStoreCli(clone, 'pull', '--remote', remote);
    expect(pull.code, pull.stderr).toBe(0);
    const pulled = path.join(clone, 'data/links/labels.csv');
    expect(fs.lstatSync(pulled).isSymbolicLink()).toBe(false);
    expect(fs.readFileSync(pulled, 'utf8')).toBe('a,b\n');
  });
});

describe('checkout targets', () => {
  it('checkout targets: a tracked path whose parent is a symlink out of the repository is refused and nothing is written there', async () => {
    const repo = makeRepo();
    const outside = tempDir();
    cleanup.push(repo.root, outside);
    const hash = await new Cache(repo).insertBytes(Buffer.from('pwned'));
    fs.symlinkSync(outside, path.join(repo.root, 'data'));
    await expect(
      checkoutArtifact(repo, { path: 'data/x/file.txt', hash, size: 5, nfiles: 1 }),
    ).rejects.toThrow(/resolves outside the repository/);
    expect(fs.readdirSync(outside)).toEqual([]);
  });
});

/** mulberry32 */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['a', 'b', 'Z', '0', '-', '_', '.', ' ', '\u00e9', '\u4e2d', '\u{1f600}', '~', '=', '+'];

/** A random valid tree: names from ALPHABET, nesting up to 4, sizes 0–3000 (some duplicated contents). */
function randomTree(rand: () => number): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  const n = 1 + Math.floor(rand() * 25);
  for (let i = 0; i < n; i++) {
    const depth = 1 + Math.floor(rand() * 4);
    const segments = Array.from({ length: depth }, (_, d) => {
      const len = 1 + Math.floor(rand() * 8);
      let s = Array.from({ length: len }, () => ALPHABET[Math.floor(rand() * ALPHABET.length)]!).join('');
      if (s === '.' || s === '..') s = `${s}x`;
      return d === depth - 1 ? `${s}${i}` : s;
    });
    const p = segments.join('/');
    const size = rand() < 0.1 ? 0 : Math.floor(rand() * 3000);
    const bytes = Buffer.alloc(size);
    for (let k = 0; k < size; k++) bytes[k] = Math.floor(rand() * 256);
    files[p] = rand() < 0.15 && i > 0 ? Object.values(files)[0]! : bytes;
  }
  // Keep the tree valid: no path is also another's directory, and no case/normalization clash.
  const kept: string[] = [];
  for (const p of Object.keys(files)) if (!pathSetProblem([...kept, p])) kept.push(p);
  return Object.fromEntries(kept.map((p) => [p, files[p]!]));
}

describe('round trip', () => {
  it('round trip: seeded random valid trees survive add, push and pull bit for bit', async () => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const rand = prng(seed);
      const tree = randomTree(rand);
      const repo = makeRepo({ git: true });
      const remote = tempDir();
      const cloneParent = tempDir();
      cleanup.push(repo.root, remote, cloneParent);
      writeTree(repo.root, Object.fromEntries(Object.entries(tree).map(([p, b]) => [`data/t/${p}`, b])));
      const add = await runStoreCli(repo.root, 'add', 'data/t');
      expect(add.code, `seed ${seed}: ${add.stderr}`).toBe(0);
      expect((await runStoreCli(repo.root, 'push', '--remote', remote)).code).toBe(0);
      git(repo.root, 'add', '-A');
      git(repo.root, 'commit', '-qm', 'tree');
      const clone = path.join(cloneParent, 'c');
      git(cloneParent, 'clone', '-q', repo.root, clone);
      const pull = await runStoreCli(clone, 'pull', '--remote', remote);
      expect(pull.code, `seed ${seed}: ${pull.stderr}`).toBe(0);
      const got: Record<string, string> = {};
      const walk = (dir: string, prefix: string) => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          if (e.isDirectory()) walk(path.join(dir, e.name), `${prefix}${e.name}/`);
          else
            got[prefix + e.name] = createHash('sha256')
              .update(fs.readFileSync(path.join(dir, e.name)))
              .digest('hex');
        }
      };
      walk(path.join(clone, 'data/t'), '');
      const want = Object.fromEntries(
        Object.entries(tree).map(([p, b]) => [p, createHash('sha256').update(b).digest('hex')]),
      );
      expect(got, `seed ${seed}`).toEqual(want);
    }
  }, 120_000);
});
