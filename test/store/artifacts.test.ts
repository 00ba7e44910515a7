import { describe, expect, it, afterEach, vi } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { createHash } from 'node:crypto';
import {
  artifactObjects,
  commitArtifact,
  hashArtifact,
  isArtifactCurrent,
} from '../../lib/store/artifacts.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { Cache } from '../../lib/store/cache.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { loadHashState, statKey, unloadHashState } from '../../lib/store/hash-state.ts';
import { resetWriteFaults } from '../../lib/store/fault.ts';
import { IntegrityError } from '../../lib/errors.ts';
import { ageFiles, makeRepo, tempDir, writeFiles, writeTree, listObjects, rmrf } from './helpers.ts';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(() => {
  cleanup.splice(0).forEach(rmrf);
  delete process.env.LOCKSTEP_FAULT;
  resetWriteFaults();
});

function fresh(): ReturnType<typeof makeRepo> {
  const repo = makeRepo();
  cleanup.push(repo.root);
  return repo;
}

describe('artifacts', () => {
  it('commitArtifact of a file records its sha256 and inserts it', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'alpha' });
    const ref = await commitArtifact(repo, 'd/a.txt');
    expect(ref).toEqual({ path: 'd/a.txt', hash: sha('alpha'), size: 5, nfiles: 1 });
    expect(await new Cache(repo).has(sha('alpha'))).toBe(true);
  });

  it('commitArtifact of a directory inserts every file and the manifest that names it', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'alpha', 'd/sub/b.txt': 'beta', 'd/sub/c.txt': 'alpha' });
    const ref = await commitArtifact(repo, 'd');
    const manifest = JSON.stringify({
      entries: [
        { path: 'a.txt', sha256: sha('alpha'), size: 5 },
        { path: 'sub/b.txt', sha256: sha('beta'), size: 4 },
        { path: 'sub/c.txt', sha256: sha('alpha'), size: 5 },
      ],
    });
    expect(ref).toEqual({ path: 'd', hash: sha(manifest), size: 14, nfiles: 3, dir: true });
    expect((await artifactObjects(repo, ref)).sort()).toEqual(
      [sha(manifest), sha('alpha'), sha('beta')].sort(),
    );
    expect(
      listObjects(repo.cacheDir)
        .map(([oid]) => oid)
        .sort(),
    ).toEqual([sha(manifest), sha('alpha'), sha('beta')].sort());
    for (const [oid, p] of listObjects(repo.cacheDir)) expect(sha(fs.readFileSync(p))).toBe(oid);
  });

  it('hashArtifact hashes without inserting and agrees with commitArtifact (parallel path)', async () => {
    const repo = fresh();
    // Enough bytes to take the worker-thread path.
    for (let i = 0; i < 40; i++) writeTree(repo.root, { [`big/f${i}`]: Buffer.alloc(300_000, i) });
    const hashed = await hashArtifact(repo, 'big');
    expect(listObjects(repo.cacheDir)).toEqual([]);
    unloadHashState(repo);
    fs.rmSync(path.join(repo.stateDir, 'state'), { recursive: true, force: true });
    expect(await commitArtifact(repo, 'big')).toEqual(hashed);
    expect(hashed.nfiles).toBe(40);
    expect(hashed.size).toBe(40 * 300_000);
  });

  it('hashArtifact calls running concurrently on the worker pool each get their own results', async () => {
    const repo = fresh();
    for (const d of ['a', 'b', 'c']) {
      // 70 files each: enough for the worker pool even before anything is stat'ed.
      for (let i = 0; i < 70; i++) {
        writeTree(repo.root, { [`${d}/f${i}`]: Buffer.alloc(150_000, `${d}${i}`) });
      }
    }
    const together = await Promise.all(['a', 'b', 'c'].map((d) => hashArtifact(repo, d)));
    unloadHashState(repo);
    fs.rmSync(path.join(repo.stateDir, 'state'), { recursive: true, force: true });
    const alone = [];
    for (const d of ['a', 'b', 'c']) alone.push(await hashArtifact(repo, d));
    expect(together).toEqual(alone);
    expect(new Set(together.map((r) => r.hash)).size).toBe(3);
  });

  it('hash state lets unchanged files skip re-reading and notices changed ones', async () => {
    const repo = fresh();
    writeFiles(repo.root, 'd', 5);
    writeTree(repo.root, { 'd/fresh.txt': 'just written' });
    ageFiles(path.join(repo.root, 'd'));
    const freshFile = path.join(repo.root, 'd/fresh.txt');
    fs.utimesSync(freshFile, new Date(), new Date());
    const ref = await hashArtifact(repo, 'd');
    const state = loadHashState(repo);
    // The just-written file is inside the racy window, so it is not trusted later.
    expect(state.size).toBe(5);
    expect(state.lookup('d/fresh.txt', statKey(fs.statSync(freshFile, { bigint: true })))).toBeUndefined();
    // Poison the recorded oid of an unchanged file: a hit must be trusted, proving no re-read.
    const statFile = state.file;
    const onDisk = JSON.parse(fs.readFileSync(statFile, 'utf8'));
    expect(Object.keys(onDisk.files)).toHaveLength(5);
    onDisk.files['d/f0000.txt'][1] = 'f'.repeat(64);
    fs.writeFileSync(statFile, JSON.stringify(onDisk));
    unloadHashState(repo);
    expect((await hashArtifact(repo, 'd')).hash).not.toBe(ref.hash);
    // Touching the file changes its stat key, so it is re-read and the true hash returns.
    const f0 = path.join(repo.root, 'd/f0000.txt');
    const t = new Date(Date.now() + 5000);
    fs.utimesSync(f0, t, t);
    expect((await hashArtifact(repo, 'd')).hash).toBe(ref.hash);
    // Deleted files leave the state, so it does not grow without bound.
    fs.rmSync(path.join(repo.root, 'd/f0001.txt'));
    await hashArtifact(repo, 'd');
    expect(
      loadHashState(repo).lookup('d/f0001.txt', statKey(fs.statSync(f0, { bigint: true }))),
    ).toBeUndefined();
    expect(Object.keys(JSON.parse(fs.readFileSync(statFile, 'utf8')).files)).not.toContain('d/f0001.txt');
  });

  it('isArtifactCurrent is true for an untouched path and false after an edit, add or delete', async () => {
    const repo = fresh();
    writeFiles(repo.root, 'd', 4);
    const ref = await commitArtifact(repo, 'd');
    expect(await isArtifactCurrent(repo, ref)).toBe(true);
    fs.appendFileSync(path.join(repo.root, 'd/f0001.txt'), 'x');
    expect(await isArtifactCurrent(repo, ref)).toBe(false);
    await checkoutArtifact(repo, ref);
    expect(await isArtifactCurrent(repo, ref)).toBe(true);
    writeTree(repo.root, { 'd/new.txt': 'n' });
    expect(await isArtifactCurrent(repo, ref)).toBe(false);
    fs.rmSync(path.join(repo.root, 'd'), { recursive: true });
    expect(await isArtifactCurrent(repo, ref)).toBe(false);
  });

  it('checkoutArtifact restores a directory as writable copies and replaces what is there', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'alpha', 'd/sub/b.txt': 'beta' });
    const ref = await commitArtifact(repo, 'd');
    writeTree(repo.root, { 'd/a.txt': 'changed', 'd/stray.txt': 'stray' });
    await checkoutArtifact(repo, ref);
    expect(fs.readFileSync(path.join(repo.root, 'd/a.txt'), 'utf8')).toBe('alpha');
    expect(fs.existsSync(path.join(repo.root, 'd/stray.txt'))).toBe(false);
    expect(fs.statSync(path.join(repo.root, 'd/sub/b.txt')).mode & 0o200).toBe(0o200);
    expect(fs.readdirSync(repo.root).filter((n) => n.includes('lockstep-'))).toEqual([]);
    const fileRef = await commitArtifact(repo, 'd/a.txt');
    fs.rmSync(path.join(repo.root, 'd'), { recursive: true });
    await checkoutArtifact(repo, fileRef);
    expect(fs.readFileSync(path.join(repo.root, 'd/a.txt'), 'utf8')).toBe('alpha');
  });

  it('checkoutArtifact without the objects is an IntegrityError naming the path and run lockstep pull', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'alpha' });
    const ref = await commitArtifact(repo, 'd');
    fs.rmSync(repo.cacheDir, { recursive: true });
    fs.rmSync(path.join(repo.root, 'd'), { recursive: true });
    const err = await checkoutArtifact(repo, ref).catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/^d: .*missing.*run lockstep pull/i);
    expect(fs.existsSync(path.join(repo.root, 'd'))).toBe(false);
  });

  it('checkoutArtifact quarantines a corrupt cache object and re-fetches it from the remote', async () => {
    const repo = fresh();
    const remoteDir = tempDir();
    cleanup.push(remoteDir);
    writeTree(repo.root, { 'd/a.txt': 'alpha', 'd/b.txt': 'beta' });
    const ref = await commitArtifact(repo, 'd');
    const remote = new LocalRemote(remoteDir);
    await pushObjects(repo, remote, await artifactObjects(repo, ref));
    const objPath = new Cache(repo).objectPath(sha('alpha'));
    fs.chmodSync(objPath, 0o644);
    fs.writeFileSync(objPath, 'rotted');
    fs.rmSync(path.join(repo.root, 'd'), { recursive: true });
    await checkoutArtifact(repo, ref, { remote });
    expect(fs.readFileSync(path.join(repo.root, 'd/a.txt'), 'utf8')).toBe('alpha');
    expect(fs.readFileSync(objPath, 'utf8')).toBe('alpha');
    expect(fs.readdirSync(path.join(repo.stateDir, 'quarantine'))).toHaveLength(1);
  });
});

describe('push of an object that changes under it', () => {
  afterEach(() => vi.restoreAllMocks());

  it.each([
    ['small (verified in memory)', 'alpha'],
    ['large (verified from the file)', 'x'.repeat((4 << 20) + 1)],
  ])(
    'an object deleted after push looked at it is reported missing, not corrupt: %s',
    async (_how, content) => {
      const repo = fresh();
      const remoteDir = tempDir();
      cleanup.push(remoteDir);
      writeTree(repo.root, { 'a.bin': content });
      const ref = await commitArtifact(repo, 'a.bin');
      const objPath = new Cache(repo).objectPath(ref.hash);
      // Another process (a `gc` in a clone sharing the cache) deletes it right after the stat.
      const stat = fs.statSync;
      vi.spyOn(fs, 'statSync').mockImplementation(((p: fs.PathLike, opts?: fs.StatSyncOptions) => {
        const st = stat(p, opts);
        if (p === objPath) fs.rmSync(objPath, { force: true });
        return st;
      }) as typeof fs.statSync);
      const err = await pushObjects(repo, new LocalRemote(remoteDir), [ref.hash]).catch((e) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect(err.message).toMatch(/object is missing from the cache/);
      expect(fs.existsSync(path.join(repo.stateDir, 'quarantine'))).toBe(false);
    },
  );

  it('a corrupt object is still reported corrupt and quarantined', async () => {
    const repo = fresh();
    const remoteDir = tempDir();
    cleanup.push(remoteDir);
    writeTree(repo.root, { 'a.bin': 'alpha' });
    const ref = await commitArtifact(repo, 'a.bin');
    const objPath = new Cache(repo).objectPath(ref.hash);
    fs.chmodSync(objPath, 0o644);
    fs.writeFileSync(objPath, 'rotted');
    const err = await pushObjects(repo, new LocalRemote(remoteDir), [ref.hash]).catch((e) => e);
    expect(err.message).toMatch(/corrupt \(quarantined\)/);
    expect(fs.readdirSync(path.join(repo.stateDir, 'quarantine'))).toHaveLength(1);
  });
});

describe('artifacts bad input', () => {
  it.each([['../outside'], ['d/../../x'], ['/etc/passwd'], ['.lockstep/cache']])(
    'hashArtifact rejects the path %s as outside the repository',
    async (p) => {
      const repo = fresh();
      const err = await hashArtifact(repo, p).catch((e) => e);
      expect(err.message).toMatch(/outside the repository|through ".."|lockstep or git metadata/);
      expect(err.message.split('\n')).toHaveLength(1);
    },
  );

  it('hashArtifact rejects a symlink that leads outside the repository', async () => {
    const repo = fresh();
    const outside = tempDir();
    cleanup.push(outside);
    fs.symlinkSync(outside, path.join(repo.root, 'link'));
    await expect(hashArtifact(repo, 'link')).rejects.toThrow(/resolves outside the repository/);
  });

  it('hashArtifact reports a symlink loop instead of walking forever', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'a' });
    fs.symlinkSync('loop2', path.join(repo.root, 'd/loop1'));
    fs.symlinkSync('loop1', path.join(repo.root, 'd/loop2'));
    await expect(hashArtifact(repo, 'd')).rejects.toThrow(/symlink loop/);
    fs.rmSync(path.join(repo.root, 'd/loop1'));
    fs.rmSync(path.join(repo.root, 'd/loop2'));
    fs.symlinkSync('..', path.join(repo.root, 'd/up'));
    await expect(hashArtifact(repo, 'd')).rejects.toThrow(/symlink loop/);
    fs.symlinkSync('self', path.join(repo.root, 'self'));
    await expect(hashArtifact(repo, 'self')).rejects.toThrow(/symlink loop/);
  });

  it('hashArtifact refuses a FIFO or a socket inside a directory instead of leaving it out', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'a', 'e/a.txt': 'a' });
    expect(spawnSync('mkfifo', [path.join(repo.root, 'd/pipe')]).status).toBe(0);
    await expect(hashArtifact(repo, 'd')).rejects.toThrow(
      'd/pipe: not a regular file or directory "pipe". Track files or directories only',
    );
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(repo.root, 'e/sock'), resolve));
    try {
      await expect(hashArtifact(repo, 'e')).rejects.toThrow(
        'e/sock: not a regular file or directory "sock".',
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('hashArtifact names a file whose name is not UTF-8 instead of failing to open it', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'a', 'd/ok\uFFFD.txt': 'a real U+FFFD in a UTF-8 name' });
    fs.writeFileSync(Buffer.concat([Buffer.from(path.join(repo.root, 'd/x')), Buffer.from([0xff])]), 'x');
    await expect(hashArtifact(repo, 'd')).rejects.toThrow(
      'd/x\uFFFD: file name cannot be tracked (not valid UTF-8) "x\uFFFD". Rename it to a UTF-8 name',
    );
  });

  it('commitArtifact names a file removed after the directory was listed', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'a', 'd/b.txt': 'b' });
    const readdir = fs.readdirSync;
    // Another process removes d/b.txt right after the walk listed it.
    const spy = vi.spyOn(fs, 'readdirSync').mockImplementation(((...args: Parameters<typeof readdir>) => {
      const listed = readdir(...args);
      fs.rmSync(path.join(repo.root, 'd/b.txt'), { force: true });
      return listed;
    }) as typeof readdir);
    try {
      await expect(commitArtifact(repo, 'd')).rejects.toThrow(
        /^d\/b\.txt: file (disappeared while it was hashed|disappeared while it was listed) "d\/b\.txt"\. Retry when nothing is moving files there\.$/,
      );
    } finally {
      spy.mockRestore();
    }
  });

  it('hashArtifact stops walking a tree at the depth limit, with the path rule, even past PATH_MAX', async () => {
    const repo = fresh();
    fs.mkdirSync(path.join(repo.root, 'deep'));
    // 500 levels of "dddddddd/": the full path passes PATH_MAX (4096), so only a process that
    // walks down with chdir can make it.
    const made = spawnSync(
      process.execPath,
      [
        '-e',
        "const fs=require('fs');process.chdir('deep');for(let i=0;i<500;i++){fs.mkdirSync('dddddddd');process.chdir('dddddddd')}fs.writeFileSync('f','x')",
      ],
      { cwd: repo.root },
    );
    expect(made.status).toBe(0);
    try {
      const err = await hashArtifact(repo, 'deep').catch((e: Error) => e);
      expect((err as Error).message).toMatch(
        /^deep\/(dddddddd\/){64}dddddddd: file name cannot be tracked \(path is nested deeper than 64 levels\) "(dddddddd\/){64}dddddddd"\. Rename it/,
      );
    } finally {
      spawnSync('rm', ['-rf', path.join(repo.root, 'deep')]);
    }
  });

  it('commitArtifact error for a file name holding a newline stays on one line', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/a.txt': 'a', 'd/two\nlines.txt': 'a' });
    const err = await commitArtifact(repo, 'd').catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /^d\/two\\nlines\.txt: file name cannot be tracked \(path contains a NUL or control character\)/,
    );
    expect((err as Error).message).not.toContain('\n');
  });

  it('hashArtifact fails on a file that changes while it is hashed', async () => {
    const repo = fresh();
    const file = path.join(repo.root, 'growing.bin');
    fs.writeFileSync(file, Buffer.alloc(64 << 20, 7));
    const writer = spawn(process.execPath, [
      '-e',
      // Stops by itself after 2 minutes: a busy loop orphaned by a dead test worker must not
      // spin for the rest of the CI run.
      `const fs=require('fs');const fd=fs.openSync(${JSON.stringify(file)},'r+');const end=Date.now()+120000;let i=0;while(Date.now()<end){fs.writeSync(fd,'x',(i++%1000)*65536)}`,
    ]);
    try {
      // Wait until the writer is running (node start-up is slow on a loaded machine).
      const initial = fs.statSync(file).mtimeMs;
      for (let i = 0; i < 750 && fs.statSync(file).mtimeMs === initial; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(fs.statSync(file).mtimeMs).not.toBe(initial);
      // A pass during which the writer happened not to be scheduled may legitimately succeed.
      let error: Error | undefined;
      for (let attempt = 0; attempt < 5 && !error; attempt++) {
        error = await hashArtifact(repo, 'growing.bin').then(
          () => undefined,
          (e: Error) => e,
        );
      }
      expect(error?.message).toMatch(/^growing\.bin: file changed while it was hashed/);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('commitArtifact on a full disk in the worker-thread path removes every temp file', async () => {
    const repo = fresh();
    for (let i = 0; i < 12; i++) writeTree(repo.root, { [`big/f${i}`]: Buffer.alloc(1 << 20, i) });
    process.env.LOCKSTEP_FAULT = 'enospc-after:4';
    resetWriteFaults();
    await expect(commitArtifact(repo, 'big')).rejects.toThrow(/^\.lockstep\/cache: no space left on device/);
    expect(listObjects(repo.cacheDir)).toEqual([]);
    expect(fs.readdirSync(path.join(repo.cacheDir, 'tmp'))).toEqual([]);
    delete process.env.LOCKSTEP_FAULT;
    resetWriteFaults();
    expect((await commitArtifact(repo, 'big')).nfiles).toBe(12);
    expect(listObjects(repo.cacheDir)).toHaveLength(13);
  });

  it('commitArtifact names the cache, not the file, when flushing the copy into the cache fails', async () => {
    const repo = fresh();
    writeTree(repo.root, { 'd/big.bin': Buffer.alloc(40 << 20, 3), 'd/small.txt': 'x' });
    vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, cb: (err: Error | null) => void) => {
      const err: NodeJS.ErrnoException = new Error('EIO: i/o error, fdatasync');
      err.code = 'EIO';
      setImmediate(() => cb(err));
    }) as typeof fs.fdatasync);
    try {
      const err = await commitArtifact(repo, 'd').catch((e) => e);
      expect(err.message).toBe(
        '.lockstep/cache: cannot write the cache copy (EIO) "d/big.bin". Check the disk holding .lockstep/cache and retry.',
      );
    } finally {
      vi.restoreAllMocks();
    }
    expect(listObjects(repo.cacheDir)).toEqual([]);
    expect(fs.readdirSync(path.join(repo.cacheDir, 'tmp'))).toEqual([]);
    expect((await commitArtifact(repo, 'd')).nfiles).toBe(2);
  });

  it('commitArtifact on a full disk fails in one line and leaves only complete objects', async () => {
    const repo = fresh();
    writeFiles(repo.root, 'd', 10);
    process.env.LOCKSTEP_FAULT = 'enospc-after:3';
    resetWriteFaults();
    const err = await commitArtifact(repo, 'd').catch((e) => e);
    expect(err.message).toMatch(/^\.lockstep\/cache: no space left on device/);
    const objects = listObjects(repo.cacheDir);
    expect(objects.length).toBeLessThanOrEqual(3);
    for (const [oid, p] of objects) expect(sha(fs.readFileSync(p))).toBe(oid);
    expect(fs.readdirSync(path.join(repo.cacheDir, 'tmp'))).toEqual([]);
  });
});
