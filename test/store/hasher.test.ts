import { afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { hashOne, hashOneAsync } from '../../lib/store/hash-worker.mjs';
import { closeHashPool, hashFiles } from '../../lib/store/hasher.ts';
import { rmrf, tempDir } from './helpers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  cleanup.splice(0).forEach(rmrf);
  await closeHashPool();
});

describe('hasher', () => {
  it.each([
    // [bytes, fsync, synced]: the caller decides which copies are synced as written.
    [100 * 1024, false, false],
    [100 * 1024, true, true],
    [(16 << 20) + 12345, true, true],
    [(16 << 20) + 12345, false, false],
    [0, false, false],
  ])('hashOne copies %i bytes exactly (fsync %s -> synced %s)', (bytes, fsync, synced) => {
    const dir = tempDir();
    cleanup.push(dir);
    const src = path.join(dir, 'src');
    const data = randomBytes(bytes);
    fs.writeFileSync(src, data);
    fs.mkdirSync(path.join(dir, 'objects'));
    const dest = path.join(dir, 'dest');
    const r = hashOne({ path: src, dest, objects: path.join(dir, 'objects'), mode: 0o444, fsync });
    expect(r.oid).toBe(sha(data));
    expect(r.size).toBe(bytes);
    expect(Boolean(r.synced)).toBe(synced);
    expect(sha(fs.readFileSync(dest))).toBe(r.oid);
  });

  it('hashFiles without sizes hashes a few files the same as one by one', async () => {
    const dir = tempDir();
    cleanup.push(dir);
    const tasks = [0, 1, 2, 3].map((i) => {
      const file = path.join(dir, `f${i}`);
      fs.writeFileSync(file, randomBytes((3 << 20) + i));
      return { path: file };
    });
    const results = await hashFiles(tasks);
    expect(results.map((r) => r.oid)).toEqual(tasks.map((t) => sha(fs.readFileSync(t.path))));
  });

  it.each([
    ['inline', 3, 1 << 10],
    ['on the workers', 6, 3 << 20],
  ])('hashFiles reports each result as it comes in (%s)', async (_how, count, bytes) => {
    const dir = tempDir();
    cleanup.push(dir);
    const tasks = Array.from({ length: count }, (_, i) => {
      const file = path.join(dir, `f${i}`);
      fs.writeFileSync(file, randomBytes(bytes + i));
      return { path: file };
    });
    const seen = new Map<number, string>();
    const results = await hashFiles(tasks, { onResult: (i, r) => seen.set(i, r.oid) });
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual(tasks.map((_, i) => i));
    expect(results.map((r, i) => seen.get(i) === r.oid)).toEqual(tasks.map(() => true));
  });

  it('hashOneAsync flushes a large copy to the disk while it writes it, and waits for the flush', async () => {
    const dir = tempDir();
    cleanup.push(dir);
    const src = path.join(dir, 'src');
    const data = randomBytes((40 << 20) + 777);
    fs.writeFileSync(src, data);
    const dest = path.join(dir, 'dest');
    let written = 0;
    const writeSync = fs.writeSync;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number) => {
      const n = writeSync(fd, buf, off, len);
      written += n;
      return n;
    }) as typeof fs.writeSync);
    const fdatasync = fs.fdatasync;
    const flushedAt: number[] = [];
    let inFlight = 0;
    vi.spyOn(fs, 'fdatasync').mockImplementation(((fd: number, cb: (err: Error | null) => void) => {
      flushedAt.push(written);
      inFlight++;
      fdatasync(fd, (err) => {
        inFlight--;
        cb(err);
      });
    }) as typeof fs.fdatasync);
    const r = await hashOneAsync({ path: src, dest, mode: 0o444 });
    expect(inFlight).toBe(0);
    expect(r.oid).toBe(sha(data));
    expect(sha(fs.readFileSync(dest))).toBe(r.oid);
    // Flushes start part-way through the copy, not only once it is complete.
    expect(flushedAt.length).toBeGreaterThan(0);
    expect(flushedAt[0]).toBeLessThan(data.length);
  });

  it('hashOneAsync fails the copy and removes dest when a flush reports a write error', async () => {
    const dir = tempDir();
    cleanup.push(dir);
    const src = path.join(dir, 'src');
    fs.writeFileSync(src, randomBytes(40 << 20));
    const dest = path.join(dir, 'dest');
    vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, cb: (err: Error | null) => void) => {
      const err: NodeJS.ErrnoException = new Error('EIO: i/o error, fdatasync');
      err.code = 'EIO';
      setImmediate(() => cb(err));
    }) as typeof fs.fdatasync);
    await expect(hashOneAsync({ path: src, dest, mode: 0o444 })).rejects.toMatchObject({ code: 'EIO' });
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('hashOneAsync stops copying at the next flush point once a flush has failed', async () => {
    const dir = tempDir();
    cleanup.push(dir);
    const src = path.join(dir, 'src');
    const size = 160 << 20;
    fs.writeFileSync(src, Buffer.alloc(size, 7));
    const dest = path.join(dir, 'dest');
    let written = 0;
    const writeSync = fs.writeSync;
    vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, buf: Buffer, off: number, len: number) => {
      const n = writeSync(fd, buf, off, len);
      written += n;
      return n;
    }) as typeof fs.writeSync);
    vi.spyOn(fs, 'fdatasync').mockImplementation(((_fd: number, cb: (err: Error | null) => void) => {
      const err: NodeJS.ErrnoException = new Error('ENOSPC: no space left on device, fdatasync');
      err.code = 'ENOSPC';
      setImmediate(() => cb(err));
    }) as typeof fs.fdatasync);
    await expect(hashOneAsync({ path: src, dest, mode: 0o444 })).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(fs.existsSync(dest)).toBe(false);
    // The first flush (at 32 MiB) fails; the copy ends by the next flush point, not at 160 MiB.
    expect(written).toBeLessThanOrEqual(64 << 20);
  });
});

describe('hasher against special files', () => {
  // A file the scan saw as regular can be replaced by a FIFO before it is hashed: opening one
  // for reading waits for a writer, so the add hung for good instead of refusing the file. Run in
  // a child so a hang fails the test instead of blocking this thread.
  it.each(['hashOne', 'hashOneAsync', 'hardlink', 'reflink'])(
    '%s refuses a FIFO at once instead of waiting for a writer',
    (how) => {
      const dir = tempDir();
      cleanup.push(dir);
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const worker = fileURLToPath(new URL('../../lib/store/hash-worker.mjs', import.meta.url));
      const task =
        how === 'hardlink' || how === 'reflink'
          ? { path: fifo, dest: path.join(dir, 'dest'), link: how }
          : { path: fifo, dest: path.join(dir, 'dest') };
      const call = how === 'hashOneAsync' ? 'hashOneAsync' : 'hashOne';
      const script = `import(${JSON.stringify(pathToFileURL(worker).href)}).then(async (m) => {
        try { await m.${call}(${JSON.stringify(task)}); console.log('ok'); }
        catch (e) { console.log(e.code); }
      });`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        timeout: 4_000,
      });
      expect(r.signal, 'the child hung opening the FIFO').toBeNull();
      expect(r.stdout.trim()).toBe('ENOTFILE');
      expect(fs.existsSync(path.join(dir, 'dest'))).toBe(false);
    },
  );
});
