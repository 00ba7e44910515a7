import { afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { addPaths } from '../../lib/store/add.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { closeHashPool } from '../../lib/store/hasher.ts';
import { makeRepo, listObjects, rmrf, tempDir, writeTree } from './helpers.ts';

const cleanup: string[] = [];
const savedPath = process.env.PATH;
afterEach(async () => {
  process.env.PATH = savedPath;
  vi.restoreAllMocks();
  cleanup.splice(0).forEach(rmrf);
  await closeHashPool();
});

/**
 * The durability rule of `add`: an object is renamed to its name only after its bytes are
 * durable. Small new objects share one `sync -f` (syncfs), large ones are fsynced as they are
 * written; no rename may come before either.
 */
describe('add durability', () => {
  it('add renames no object into place before the one sync -f of many small temps', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`data/f${i}.bin`] = randomBytes(200 + i);
    writeTree(repo.root, files);
    // A `sync` first on PATH that records how many objects already have their names, then syncs.
    const realSync = spawnSync('sh', ['-c', 'command -v sync'], { encoding: 'utf8' }).stdout.trim();
    const bin = tempDir();
    cleanup.push(bin);
    const mark = path.join(bin, 'objects-at-sync');
    fs.writeFileSync(
      path.join(bin, 'sync'),
      `#!/bin/sh\nfind '${repo.cacheDir}/sha256' -type f 2>/dev/null | wc -l >> '${mark}'\nexec '${realSync}' "$@"\n`,
      { mode: 0o755 },
    );
    process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
    await addPaths(repo, ['data']);
    expect(fs.readFileSync(mark, 'utf8').trim().split('\n').map(Number)).toEqual([0]);
    expect(listObjects(repo.cacheDir)).toHaveLength(41);
  });

  it('add fsyncs each large temp before any object gets its name', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 4; i++) files[`data/big${i}.bin`] = randomBytes((16 << 20) + i);
    files['data/small.bin'] = randomBytes(100);
    writeTree(repo.root, files);
    const probe = await fs.promises.open(path.join(repo.root, 'data/small.bin'), 'r');
    const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const sync = proto.sync;
    let pending = 0;
    let synced = 0;
    vi.spyOn(proto, 'sync').mockImplementation(async function (this: unknown) {
      pending++;
      try {
        return await sync.call(this);
      } finally {
        pending--;
        synced++;
      }
    });
    const rename = fs.promises.rename;
    const pendingAtRename: number[] = [];
    vi.spyOn(fs.promises, 'rename').mockImplementation(async (from, to) => {
      if (String(to).includes(`${path.sep}sha256${path.sep}`)) pendingAtRename.push(pending);
      return rename(from, to);
    });
    await addPaths(repo, ['data']);
    expect(synced).toBeGreaterThanOrEqual(4);
    expect(pendingAtRename.length).toBeGreaterThanOrEqual(5);
    expect(pendingAtRename.every((n) => n === 0)).toBe(true);
    expect(listObjects(repo.cacheDir)).toHaveLength(6);
  });

  it("a scratch disk's non-durable cache takes hard-linked outputs with no fsync and no sync", async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 40; i++) files[`out/f${i}.bin`] = randomBytes(300 + i);
    files['out/big.bin'] = randomBytes((16 << 20) + 1);
    writeTree(repo.root, files);
    // Any `sync` run on PATH leaves a mark; any FileHandle.sync is counted.
    const bin = tempDir();
    cleanup.push(bin);
    const mark = path.join(bin, 'synced');
    fs.writeFileSync(
      path.join(bin, 'sync'),
      `#!/bin/sh
echo "$@" >> '${mark}'
`,
      { mode: 0o755 },
    );
    process.env.PATH = `${bin}${path.delimiter}${savedPath}`;
    const probe = await fs.promises.open(path.join(repo.root, 'out/f0.bin'), 'r');
    const proto = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const handleSyncs = vi.spyOn(proto, 'sync');
    const fsyncs = vi.spyOn(fs, 'fsyncSync');
    const ref = await commitArtifact(repo, 'out', {
      cache: new Cache(repo, { durable: false }),
      link: 'hardlink',
      linkFallback: true,
    });
    expect(ref.nfiles).toBe(41);
    expect(fs.existsSync(mark)).toBe(false);
    expect(handleSyncs).not.toHaveBeenCalled();
    expect(fsyncs).not.toHaveBeenCalled();
    // 41 files and the manifest, each file one inode with its object.
    const objects = listObjects(repo.cacheDir);
    expect(objects).toHaveLength(42);
    const cache = new Cache(repo);
    for (const [rel, bytes] of Object.entries(files)) {
      const oid = (await import('node:crypto')).createHash('sha256').update(bytes).digest('hex');
      expect(fs.statSync(path.join(repo.root, rel)).ino).toBe(fs.statSync(cache.objectPath(oid)).ino);
    }
    // The same commit into a durable cache syncs (the control: the counters see syncs).
    const again = makeRepo({ git: true });
    cleanup.push(again.root);
    writeTree(again.root, files);
    await commitArtifact(again, 'out', { cache: new Cache(again), link: 'hardlink', linkFallback: true });
    expect(fs.existsSync(mark) || handleSyncs.mock.calls.length > 0).toBe(true);
  });
});
