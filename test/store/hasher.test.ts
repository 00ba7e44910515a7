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
    // [bytes, fsyncLarge, synced]: small files are left to the batched sync, large ones are synced.
    [100 * 1024, true, false],
    [(16 << 20) + 12345, true, true],
    [(16 << 20) + 12345, false, false],
    [0, true, false],
  ])('hashOne copies %i bytes exactly (fsyncLarge %s -> synced %s)', (bytes, fsyncLarge, synced) => {
    const dir = tempDir();
    cleanup.push(dir);
    const src = path.join(dir, 'src');
    const data = randomBytes(bytes);
    fs.writeFileSync(src, data);
    fs.mkdirSync(path.join(dir, 'objects'));
    const dest = path.join(dir, 'dest');
    const r = hashOne({ path: src, dest, objects: path.join(dir, 'objects'), mode: 0o444, fsyncLarge });
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
});
