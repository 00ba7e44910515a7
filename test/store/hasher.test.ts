import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { hashOne } from '../../lib/store/hash-worker.mjs';
import { closeHashPool, hashFiles } from '../../lib/store/hasher.ts';
import { rmrf, tempDir } from './helpers.ts';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(async () => {
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
});
