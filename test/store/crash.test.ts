import { describe, expect, it, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { addPaths } from '../../lib/store/add.ts';
import { encodeManifest } from '../../lib/store/manifest.ts';
import { readLockfile } from '../../lib/lockfile.ts';
import { Cache } from '../../lib/store/cache.ts';
import { makeRepo, listObjects, rmrf } from './helpers.ts';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const BIN = fileURLToPath(new URL('../../bin/lockstep.mjs', import.meta.url));
const FILES = 250;
const TRIALS = 20;

/** Writes version `v` of data/ and returns the directory hash it should get. */
function writeVersion(root: string, v: number): string {
  const entries = [];
  for (let i = 0; i < FILES; i++) {
    const rel = `part${i % 7}/f${String(i).padStart(4, '0')}.txt`;
    const content = `trial ${v} file ${i}\n`.repeat(20 + ((i * 7 + v) % 50));
    const abs = path.join(root, 'data', rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
    entries.push({ path: rel, sha256: sha(content), size: Buffer.byteLength(content) });
  }
  return sha(encodeManifest(entries));
}

function runAdd(root: string, killAfterMs?: number): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'add', 'data'], { cwd: root, stdio: 'ignore' });
    const timer =
      killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, ms: Date.now() - started });
    });
  });
}

const repo = makeRepo({ git: true });
afterAll(() => rmrf(repo.root));

describe('crash safety', () => {
  it(
    'add killed with SIGKILL at random points leaves valid objects and the old or new lockfile',
    { timeout: 150_000 },
    async () => {
      let expected = writeVersion(repo.root, 0);
      const calibration = await runAdd(repo.root);
      expect(calibration.code).toBe(0);
      expect(readLockfile(repo).data.data!.hash).toBe(expected);
      const outcomes = { old: 0, new: 0 };
      const verified = new Set<string>();
      for (let t = 1; t <= TRIALS; t++) {
        const previous = expected;
        expected = writeVersion(repo.root, t);
        // Anywhere from process start-up to just past a normal run's end.
        const delay = Math.floor(Math.random() * (calibration.ms + 100));
        await runAdd(repo.root, delay);

        // Objects are immutable once in place, so each trial checks the ones it has not seen.
        for (const [oid, p] of listObjects(repo.cacheDir)) {
          if (verified.has(oid)) continue;
          expect(sha(fs.readFileSync(p)), `object ${oid}`).toBe(oid);
          verified.add(oid);
        }
        const locked = readLockfile(repo).data.data!.hash;
        expect([previous, expected]).toContain(locked);
        outcomes[locked === expected ? 'new' : 'old']++;

        // The next run completes and leaves every object of the new version in the cache.
        const [ref] = await addPaths(repo, ['data']);
        expect(ref!.hash).toBe(expected);
        expect(readLockfile(repo).data.data!.hash).toBe(expected);
        const cache = new Cache(repo);
        const manifest = JSON.parse((await cache.readBytes(expected)).toString()) as {
          entries: Array<{ sha256: string }>;
        };
        expect(manifest.entries).toHaveLength(FILES);
        for (const e of manifest.entries) expect(cache.hasSync(e.sha256)).toBe(true);
      }
      // Both outcomes are possible; the sum proves every trial was checked.
      expect(outcomes.old + outcomes.new).toBe(TRIALS);
    },
  );
});
