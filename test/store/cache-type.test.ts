import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { addPaths } from '../../lib/store/add.ts';
import { readCacheTypes } from '../../lib/store/cache-type.ts';
import { closeHashPool } from '../../lib/store/hasher.ts';
import { hashOne } from '../../lib/store/hash-worker.mjs';
import { Cache } from '../../lib/store/cache.ts';
import { readLockfile } from '../../lib/lockfile.ts';
import { makeRepo, listObjects, rmrf, runStoreCli, writeTree } from './helpers.ts';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(async () => {
  cleanup.splice(0).forEach(rmrf);
  await closeHashPool();
});

/** Whether this machine's temp file system can clone files (btrfs, XFS: yes; ext4: no). */
function canReflink(dir: string): boolean {
  const src = path.join(dir, 'reflink-probe');
  fs.writeFileSync(src, 'x');
  try {
    fs.copyFileSync(src, `${src}.2`, fs.constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(src, { force: true });
    fs.rmSync(`${src}.2`, { force: true });
  }
}

/** A repo with `cache.type` set and data/ holding small files and one large enough for the workers. */
function repoWithCacheType(type: unknown) {
  const repo = makeRepo({ git: true });
  cleanup.push(repo.root);
  if (type !== undefined)
    writeTree(repo.root, { '.lockstep/config.yaml': `cache:\n  type: ${JSON.stringify(type)}\n` });
  const files: Record<string, Buffer> = {
    'data/a.bin': randomBytes(1000),
    'data/b/c.bin': randomBytes(3000),
    'data/big.bin': randomBytes((9 << 20) + 7),
    'data/d.bin': randomBytes(10),
  };
  writeTree(repo.root, files);
  return { repo, files };
}

describe('cache.type', () => {
  it.each([
    [undefined, ['reflink', 'copy']],
    ['hardlink', ['hardlink']],
    [
      ['hardlink', 'copy', 'hardlink'],
      ['hardlink', 'copy'],
    ],
  ])('readCacheTypes reads cache.type %j as %j', (type, expected) => {
    const { repo } = repoWithCacheType(type);
    expect(readCacheTypes(repo)).toEqual(expected);
  });

  it('add refuses an unknown cache.type, naming the key', async () => {
    const { repo } = repoWithCacheType('symlinks');
    const r = await runStoreCli(repo.root, 'add', 'data');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/\.lockstep\/config\.yaml.*cache\.type/);
    expect(fs.existsSync(path.join(repo.root, 'artifacts.lock.yaml'))).toBe(false);
  });

  it.each([['copy'], ['hardlink'], [['reflink', 'copy']]])(
    'add with cache.type %j records the same hashes and leaves verified objects',
    async (type) => {
      const { repo, files } = repoWithCacheType(type);
      const [ref] = await addPaths(repo, ['data']);
      const cache = new Cache(repo);
      for (const [rel, bytes] of Object.entries(files)) {
        const object = cache.objectPath(sha(bytes));
        expect(sha(fs.readFileSync(object)), rel).toBe(sha(bytes));
        expect(fs.statSync(object).mode & 0o777).toBe(0o444);
        const shared = fs.statSync(object).ino === fs.statSync(path.join(repo.root, rel)).ino;
        expect(shared, `${rel} shares the object's inode`).toBe(type === 'hardlink');
      }
      expect(listObjects(repo.cacheDir)).toHaveLength(Object.keys(files).length + 1);
      expect(readLockfile(repo).data.data!.hash).toBe(ref!.hash);
      expect(fs.readdirSync(path.join(repo.cacheDir, 'tmp'))).toEqual([]);
    },
  );

  it('add with cache.type reflink alone clones where the file system can, and says so where not', async () => {
    const { repo, files } = repoWithCacheType('reflink');
    if (canReflink(repo.root)) {
      await addPaths(repo, ['data']);
      const object = new Cache(repo).objectPath(sha(files['data/big.bin']!));
      expect(sha(fs.readFileSync(object))).toBe(sha(files['data/big.bin']!));
    } else {
      const r = await runStoreCli(repo.root, 'add', 'data');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('.lockstep/config.yaml: no cache.type this file system supports "reflink"');
      expect(listObjects(repo.cacheDir)).toEqual([]);
    }
  });
});

describe('cache.type errors', () => {
  it.each([['symlink'], [[]], [['copy', 'symlink']], ['']])(
    'cache.type %j fails in one line naming the key, the allowed values and no unrelated fix',
    async (type) => {
      const { repo } = repoWithCacheType(type);
      const r = await runStoreCli(repo.root, 'add', 'data');
      expect(r.code).toBe(1);
      const lines = r.stderr.split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^lockstep: \.lockstep\/config\.yaml:2: cache\.type: /);
      expect(lines[0]).toContain('expected reflink, hardlink or copy');
      expect(lines[0]).not.toContain('remotes');
      expect(listObjects(repo.cacheDir)).toEqual([]);
    },
  );
});

describe('cache.type hardlink and edits in place', () => {
  it.each([['data'], ['data/a.bin']])(
    're-adding %s after an in-place edit quarantines the rewritten object and says so',
    async (target) => {
      const { repo, files } = repoWithCacheType('hardlink');
      const first = await runStoreCli(repo.root, 'add', target);
      expect(first.code, first.stderr).toBe(0);
      const file = path.join(repo.root, 'data/a.bin');
      const oldOid = sha(files['data/a.bin']!);
      const cache = new Cache(repo);
      expect(fs.statSync(file).ino).toBe(fs.statSync(cache.objectPath(oldOid)).ino);
      // What an editor that writes in place does: the shared inode changes under the old name.
      fs.chmodSync(file, 0o644);
      fs.appendFileSync(file, 'edited');
      const again = await runStoreCli(repo.root, 'add', target);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain(`data/a.bin: was edited in place while hard-linked`);
      expect(fs.existsSync(cache.objectPath(oldOid))).toBe(false);
      for (const [oid, p] of listObjects(repo.cacheDir)) expect(sha(fs.readFileSync(p)), oid).toBe(oid);
      expect(fs.readdirSync(path.join(repo.stateDir, 'quarantine'))).toHaveLength(1);
    },
  );
});

describe('cache.type hardlink and push', () => {
  it('push refuses an object a hard-linked file rewrote in place, and the remote never gets it', async () => {
    const { repo, files } = repoWithCacheType('hardlink');
    const remote = fs.mkdtempSync(path.join(path.dirname(repo.root), 'lockstep-remote-'));
    cleanup.push(remote);
    writeTree(repo.root, {
      '.lockstep/config.yaml': `cache:\n  type: hardlink\nremote: r\nremotes:\n  r:\n    url: ${remote}\n`,
    });
    expect((await runStoreCli(repo.root, 'add', 'data')).code).toBe(0);
    const file = path.join(repo.root, 'data/d.bin');
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, 'rewritten in place');
    const r = await runStoreCli(repo.root, 'push');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cache object is corrupt (quarantined)');
    const oid = sha(files['data/d.bin']!);
    expect(listObjects(remote).map(([o]) => o)).not.toContain(oid);
    for (const [o, p] of listObjects(remote)) expect(sha(fs.readFileSync(p)), o).toBe(o);
  });
});

/** A directory on another file system than the temp dir (tmpfs /dev/shm), if there is one. */
function otherFileSystemDir(): string | undefined {
  try {
    if (fs.statSync('/dev/shm').dev === fs.statSync(os.tmpdir()).dev) return undefined;
    return fs.mkdtempSync('/dev/shm/lockstep-xdev-');
  } catch {
    return undefined;
  }
}

describe('cache.type across file systems', () => {
  const probe = otherFileSystemDir();
  if (probe) fs.rmSync(probe, { recursive: true });
  it.skipIf(!probe).each([['hardlink'], ['reflink']] as const)(
    'a %s the file system refuses (EXDEV) is copied with fallbackCopy, an error without',
    (link) => {
      const other = otherFileSystemDir()!;
      cleanup.push(other);
      const src = path.join(other, `src-${link}`);
      const bytes = randomBytes(5000);
      fs.writeFileSync(src, bytes);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-xdev-dest-'));
      cleanup.push(dir);
      const objects = path.join(dir, 'sha256');
      expect(() => hashOne({ path: src, dest: path.join(dir, 'a'), link, objects, mode: 0o444 })).toThrow(
        /EXDEV|not supported|Invalid/,
      );
      expect(fs.existsSync(path.join(dir, 'a'))).toBe(false);
      const r = hashOne({
        path: src,
        dest: path.join(dir, 'b'),
        link,
        fallbackCopy: true,
        objects,
        mode: 0o444,
      });
      expect(r.oid).toBe(sha(bytes));
      expect(sha(fs.readFileSync(path.join(dir, 'b')))).toBe(sha(bytes));
      expect(fs.statSync(path.join(dir, 'b')).ino).not.toBe(fs.statSync(src).ino);
    },
  );
});

describe('cache.type hardlink and a failed add', () => {
  it('add of a path that does not exist beside real data fails before any file is linked or made read-only', async () => {
    const { repo } = repoWithCacheType('hardlink');
    const r = await runStoreCli(repo.root, 'add', 'data', 'nope');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nope: path does not exist');
    expect(fs.statSync(path.join(repo.root, 'data/a.bin')).mode & 0o222).not.toBe(0);
    expect(fs.statSync(path.join(repo.root, 'data/a.bin')).nlink).toBe(1);
    expect(listObjects(repo.cacheDir)).toEqual([]);
  });
});
