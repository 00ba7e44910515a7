import { afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { unloadHashState } from '../../lib/store/hash-state.ts';
import { RACY_MS, StatusIndex, trustsHashState } from '../../lib/store/status-index.ts';
import { repoAt } from '../../lib/repo.ts';
import { makeRepo, rmrf, tempDir, writeFiles, writeTree } from './helpers.ts';

const cleanup: string[] = [];
afterEach(() => cleanup.splice(0).forEach(rmrf));

/** A clock this far ahead of the real one: every file written so far is out of the racy window. */
const later =
  (ms = 2 * RACY_MS) =>
  () =>
    Date.now() + ms;

function filesTable(root: string): Record<string, [string, string]> {
  return JSON.parse(fs.readFileSync(path.join(root, '.lockstep/state/status-files.json'), 'utf8')).files;
}

async function trackedRepo(n = 20) {
  const repo = makeRepo();
  cleanup.push(repo.root);
  writeFiles(repo.root, 'data', n);
  const ref = await commitArtifact(repo, 'data');
  unloadHashState(repo);
  return { repo, ref };
}

describe('status index', () => {
  // 1,100 files: the signature is hashed in blocks of 1,024, and the added file is in the last one.
  it.each([20, 1100])(
    'status index answers an unchanged directory of %i files from stats alone, reading no per-file entry',
    async (n) => {
      const { repo, ref } = await trackedRepo(n);
      const first = StatusIndex.load(repo, { now: later() });
      expect(await first.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
      await first.save();
      // Entries planted with wrong oids are not consulted while the stat signature matches ...
      const table = filesTable(repo.root);
      for (const k of Object.keys(table)) table[k]![1] = 'b'.repeat(64);
      fs.writeFileSync(
        path.join(repo.root, '.lockstep/state/status-files.json'),
        JSON.stringify({ v: 1, files: table }),
      );
      expect(await StatusIndex.load(repo, { now: later() }).workspaceHash('data')).toEqual({
        kind: 'present',
        hash: ref.hash,
      });
      // ... and a file added to the directory breaks the signature, so the table is read.
      fs.writeFileSync(path.join(repo.root, 'data', 'zz-new.bin'), 'x');
      const after = await StatusIndex.load(repo, { now: later() }).workspaceHash('data');
      expect(after.kind).toBe('present');
      expect(after.kind === 'present' && after.hash).not.toBe(ref.hash);
    },
  );

  it('status index sees new bytes of the same size with the mtime put back (the ctime moved)', async () => {
    const { repo, ref } = await trackedRepo();
    // Whole-millisecond times, so utimes can put the mtime back to the nanosecond.
    const t = new Date(Date.now() - 60_000);
    const file = path.join(repo.root, 'data', fs.readdirSync(path.join(repo.root, 'data'))[3]!);
    fs.utimesSync(file, t, t);
    const index = StatusIndex.load(repo, { now: later() });
    expect(await index.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
    await index.save();
    expect(Object.keys(filesTable(repo.root))).toHaveLength(20);
    const before = fs.statSync(file, { bigint: true });
    const bytes = fs.readFileSync(file);
    bytes[0] = bytes[0]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    fs.utimesSync(file, t, t);
    const after = fs.statSync(file, { bigint: true });
    expect([after.size, after.mtimeNs, after.ino]).toEqual([before.size, before.mtimeNs, before.ino]);
    for (const clock of [later(), later(10 * RACY_MS)]) {
      const now = await StatusIndex.load(repo, { now: clock }).workspaceHash('data');
      expect(now.kind === 'present' && now.hash).not.toBe(ref.hash);
    }
    // Putting the old bytes back is clean again.
    bytes[0] = bytes[0]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    expect(await StatusIndex.load(repo, { now: later() }).workspaceHash('data')).toEqual({
      kind: 'present',
      hash: ref.hash,
    });
  });

  it('status index does not record files changed within a second of hashing, so they are hashed again', async () => {
    const { repo, ref } = await trackedRepo(3);
    // The real clock: every file was written just now.
    const index = StatusIndex.load(repo);
    expect(await index.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
    await index.save();
    expect(fs.existsSync(path.join(repo.root, '.lockstep/state/status.json'))).toBe(false);
    expect(fs.existsSync(path.join(repo.root, '.lockstep/state/status-files.json'))).toBe(false);
    // One second on, they are settled and recorded.
    const settled = StatusIndex.load(repo, { now: later(RACY_MS + 50) });
    expect(await settled.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
    await settled.save();
    expect(Object.keys(filesTable(repo.root))).toHaveLength(3);
  });

  it('status index reports a tracked path that is gone or cannot be tracked', async () => {
    const { repo } = await trackedRepo(2);
    fs.rmSync(path.join(repo.root, 'data'), { recursive: true });
    expect(await StatusIndex.load(repo).workspaceHash('data')).toEqual({ kind: 'missing' });
    fs.mkdirSync(path.join(repo.root, 'data'));
    fs.symlinkSync('/etc/hostname', path.join(repo.root, 'data', 'outside'));
    const bad = await StatusIndex.load(repo).workspaceHash('data');
    expect(bad.kind).toBe('unreadable');
  });

  // With `seen`, the stamp takes the cache directories' lstats taken just before (as status does
  // after checking its answer cache) instead of stat'ing them: the same answers.
  it.each([false, true])(
    'status index trusts "every object cached" only while no cache directory changed (seen: %s)',
    async (withSeen) => {
      const { repo, ref } = await trackedRepo(5);
      const seen = () => {
        const objects = path.join(repo.cacheDir, 'sha256');
        const dirs = [objects, ...fs.readdirSync(objects).map((d) => path.join(objects, d))];
        return new Map(dirs.map((d) => [d, fs.lstatSync(d, { bigint: true })]));
      };
      const stamp = () => StatusIndex.load(repo, { now: later(), seen: withSeen ? seen() : undefined });
      const first = stamp();
      expect(first.isComplete(ref)).toBe(false);
      first.markComplete(ref);
      await first.save();
      expect(stamp().isComplete(ref)).toBe(true);
      // Deleting one object (its fan-out directory's mtime moves) voids the answer.
      const cache = new Cache(repo);
      fs.rmSync(cache.objectPath(ref.hash));
      expect(stamp().isComplete(ref)).toBe(false);
      // A stamp whose directories changed within the racy window is not kept.
      const racy = StatusIndex.load(repo);
      racy.markComplete(ref);
      await racy.save();
      expect(StatusIndex.load(repo, { now: later() }).isComplete(ref)).toBe(false);
    },
  );
  it('status index does not take the hash state for a file edited after add with its mtime put back', async () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    writeFiles(repo.root, 'data', 3);
    // Whole-millisecond times, so utimes can put the mtime back to the nanosecond.
    const t = new Date(Date.now() - 60_000);
    const dir = path.join(repo.root, 'data');
    for (const f of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, f), t, t);
    const ref = await commitArtifact(repo, 'data');
    unloadHashState(repo);
    // No status ran since add: the only record of the file is the hash state (no ctime in it).
    const file = path.join(dir, fs.readdirSync(dir)[1]!);
    const bytes = fs.readFileSync(file);
    bytes[0] = bytes[0]! ^ 0xff;
    fs.writeFileSync(file, bytes);
    fs.utimesSync(file, t, t);
    const index = StatusIndex.load(repo, { now: later() });
    const now = await index.workspaceHash('data');
    expect(now.kind).toBe('present');
    expect(now.kind === 'present' && now.hash).not.toBe(ref.hash);
    await index.save();
    // Nor is the wrong answer recorded for later.
    const again = await StatusIndex.load(repo, { now: later() }).workspaceHash('data');
    expect(again.kind === 'present' && again.hash).not.toBe(ref.hash);
  });

  it('status index drops garbled entries of its files instead of answering or throwing with them', async () => {
    const { repo, ref } = await trackedRepo(3);
    const first = StatusIndex.load(repo, { now: later() });
    await first.workspaceHash('data');
    first.markComplete(ref);
    await first.save();
    const stateDir = path.join(repo.root, '.lockstep/state');
    const table = filesTable(repo.root);
    const keys = Object.keys(table);
    const bad: unknown[] = [{ x: 1 }, 7, '../../../etc/passwd'];
    const hostile = Object.fromEntries(keys.map((k, i) => [k, [table[k]![0], bad[i % bad.length]]]));
    hostile['../outside'] = ['x', 'c'.repeat(64)];
    fs.writeFileSync(path.join(stateDir, 'status-files.json'), JSON.stringify({ v: 1, files: hostile }));
    const trees = [
      { data: 'not an entry' },
      { data: [ref.hash.slice(1), 3, 'a'.repeat(40)] },
      { data: [{}, 3, null] },
      { data: null, __proto__: [1] },
    ];
    for (const t of trees) {
      const body = JSON.stringify({ v: 1, trees: t, complete: { stamp: 'x', hashes: [5, null] } });
      for (const text of [body, body.slice(0, 17), '', '\u0000', 'null', '[]']) {
        fs.writeFileSync(path.join(stateDir, 'status.json'), text);
        const index = StatusIndex.load(repo, { now: later() });
        expect(await index.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
        expect(index.isComplete(ref)).toBe(false);
      }
    }
  });
  it('status index does not trust a copy that kept sizes and mtimes, nor a file renamed over another', async () => {
    const { repo, ref } = await trackedRepo(3);
    const dir = path.join(repo.root, 'data');
    // Whole-millisecond times, so utimes can put them on another file to the nanosecond.
    const t = new Date(Date.now() - 60_000);
    for (const f of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, f), t, t);
    const first = StatusIndex.load(repo, { now: later() });
    expect(await first.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
    await first.save();
    const victim = path.join(dir, fs.readdirSync(dir)[0]!);
    const was = fs.statSync(victim);
    // Other bytes, same size and mtime, moved into place: only the inode (and ctime) differ.
    const spare = path.join(repo.root, 'spare');
    const bytes = fs.readFileSync(victim);
    bytes[0] = bytes[0]! ^ 0xff;
    fs.writeFileSync(spare, bytes);
    fs.utimesSync(spare, was.atime, was.mtime);
    fs.renameSync(spare, victim);
    const swapped = await StatusIndex.load(repo, { now: later() }).workspaceHash('data');
    expect(swapped.kind === 'present' && swapped.hash).not.toBe(ref.hash);
    // A copy of the whole repository (index included) with times preserved and one file edited.
    const copy = tempDir();
    cleanup.push(copy);
    bytes[0] = bytes[0]! ^ 0xff;
    fs.writeFileSync(victim, bytes);
    const index = StatusIndex.load(repo, { now: later() });
    expect(await index.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
    await index.save();
    fs.cpSync(repo.root, copy, { recursive: true, preserveTimestamps: true });
    const copied = path.join(copy, 'data', path.basename(victim));
    bytes[0] = bytes[0]! ^ 0xff;
    fs.writeFileSync(copied, bytes);
    fs.utimesSync(copied, fs.statSync(victim).atime, fs.statSync(victim).mtime);
    const other = await StatusIndex.load(repoAt(copy), { now: later() }).workspaceHash('data');
    expect(other.kind === 'present' && other.hash).not.toBe(ref.hash);
  });

  it.each([
    ['removed', (abs: string) => fs.rmSync(abs, { recursive: true })],
    [
      'replaced by a file',
      (abs: string) => (fs.rmSync(abs, { recursive: true }), fs.writeFileSync(abs, 'x')),
    ],
  ])(
    'status index answers for a tracked directory whose subdirectory is %s mid-walk',
    async (_what, swap) => {
      const repo = makeRepo();
      cleanup.push(repo.root);
      writeTree(repo.root, { 'data/a.txt': 'a', 'data/sub/b.txt': 'b' });
      const ref = await commitArtifact(repo, 'data');
      unloadHashState(repo);
      const first = StatusIndex.load(repo, { now: later() });
      expect(await first.workspaceHash('data')).toEqual({ kind: 'present', hash: ref.hash });
      await first.save();
      const readdir = fs.readdirSync;
      const top = path.join(repo.root, 'data');
      let swapped = false;
      // Another process changes data/sub right after the quick walk listed data/.
      const spy = vi.spyOn(fs, 'readdirSync').mockImplementation(((...args: Parameters<typeof readdir>) => {
        const listed = readdir(...args);
        if (!swapped && args[0] === top) {
          swapped = true;
          swap(path.join(top, 'sub'));
        }
        return listed;
      }) as typeof readdir);
      let now;
      try {
        now = await StatusIndex.load(repo, { now: later() }).workspaceHash('data');
      } finally {
        spy.mockRestore();
      }
      expect(swapped).toBe(true);
      expect(now.kind).toBe('present');
      expect(now.kind === 'present' && now.hash).not.toBe(ref.hash);
    },
  );

  it.each([
    ['a plain write (ctime = mtime)', 1_700_000_000_123_456_789n, 1_700_000_000_123_456_789n, true],
    ['the mtime put back (ctime later)', 1_700_000_000_123_456_789n, 1_700_000_090_000_000_001n, false],
    [
      'whole-second times (a coarse file system)',
      1_700_000_000_000_000_000n,
      1_700_000_000_000_000_000n,
      false,
    ],
  ])("status index takes add's hash state after %s: %s", (_what, mtimeNs, ctimeNs, trusted) => {
    expect(trustsHashState({ mtimeNs, ctimeNs })).toBe(trusted);
  });
});
