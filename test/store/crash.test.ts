import { describe, expect, it, afterAll } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { encodeManifest } from '../../lib/store/manifest.ts';
import { readLockfile } from '../../lib/lockfile.ts';
import { Cache } from '../../lib/store/cache.ts';
import { createRng } from '../../lib/rng.ts';
import { makeRepo, listObjects, rmrf, runStoreCli } from './helpers.ts';

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

/** Runs `lockstep <args>` in a child process, SIGKILLed after `killAfterMs` when given (code null). */
function runCli(
  root: string,
  args: string[],
  killAfterMs?: number,
): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: root, stdio: 'ignore' });
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
const bigRepo = makeRepo({ git: true });
afterAll(() => {
  rmrf(repo.root);
  rmrf(bigRepo.root);
});

/** Writes version `v` of big/: two 40 MiB files (each flushed to the disk while copied). */
function writeBigVersion(root: string, v: number): void {
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < 2; i++) {
    const abs = path.join(root, 'big', `f${i}.bin`);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    const fd = fs.openSync(abs, 'w');
    for (let mib = 0; mib < 40; mib++) {
      randomFillSync(block, 0, 64);
      block.write(`version ${v} file ${i} MiB ${mib}`, 64);
      fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
  }
}

describe('crash safety', () => {
  it(
    'add killed with SIGKILL at random points leaves valid objects and the old or new lockfile',
    { timeout: 150_000 },
    async () => {
      writeVersion(repo.root, 0);
      const startup = await runCli(repo.root, ['--help']);
      // The first add runs cold (page cache, compile cache) and can take several times what the
      // trials take: timed on it, every kill could land after the run ended. The second is timed.
      expect((await runCli(repo.root, ['add', 'data'])).code).toBe(0);
      let expected = writeVersion(repo.root, 1000);
      const calibration = await runCli(repo.root, ['add', 'data']);
      expect(calibration.code).toBe(0);
      expect(readLockfile(repo).data.data!.hash).toBe(expected);
      const verified = new Set<string>();
      let killed = 0;
      // Seeded, so a failing sequence of kill points can be replayed (LOCKSTEP_CRASH_SEED).
      const given = process.env.LOCKSTEP_CRASH_SEED;
      const seed = given ? Number(given) : Date.now() % 100_000;
      expect(Number.isInteger(seed), `LOCKSTEP_CRASH_SEED=${given}: not an integer`).toBe(true);
      const rng = createRng(seed);
      for (let t = 1; t <= TRIALS; t++) {
        const previous = expected;
        expected = writeVersion(repo.root, t);
        // From late start-up to just past a normal run's end, so most kills land mid-add.
        const from = Math.floor(startup.ms * 0.7);
        const delay = from + Math.floor(rng.next() * Math.max(1, calibration.ms + 50 - from));
        const where = `seed ${seed}, trial ${t}, killed after ${delay} ms`;
        if ((await runCli(repo.root, ['add', 'data'], delay)).code === null) killed++;

        // Objects are immutable once in place, so each trial checks the ones it has not seen.
        for (const [oid, p] of listObjects(repo.cacheDir)) {
          if (verified.has(oid)) continue;
          expect(sha(fs.readFileSync(p)), `${where}: object ${oid}`).toBe(oid);
          verified.add(oid);
        }
        expect([previous, expected], where).toContain(readLockfile(repo).data.data!.hash);

        // The next run (clearing the killed process's repository lock) completes and leaves
        // every object of the new version in the cache.
        const next = await runStoreCli(repo.root, 'add', 'data', '--json');
        expect(next.code, `${where}: ${next.stderr}`).toBe(0);
        expect(JSON.parse(next.stdout)[0].hash).toBe(expected);
        expect(readLockfile(repo).data.data!.hash).toBe(expected);
        const cache = new Cache(repo);
        const manifest = JSON.parse((await cache.readBytes(expected)).toString()) as {
          entries: Array<{ sha256: string }>;
        };
        expect(manifest.entries).toHaveLength(FILES);
        for (const e of manifest.entries) expect(cache.hasSync(e.sha256)).toBe(true);
      }
      expect(killed, `seed ${seed}`).toBeGreaterThan(0);
    },
  );

  it(
    'add of large files killed with SIGKILL mid-copy leaves only objects that match their names',
    { timeout: 60_000 },
    async () => {
      writeBigVersion(bigRepo.root, 0);
      const startup = await runCli(bigRepo.root, ['--help']);
      const calibration = await runCli(bigRepo.root, ['add', 'big']);
      expect(calibration.code).toBe(0);
      const given = process.env.LOCKSTEP_CRASH_SEED;
      const seed = given ? Number(given) : Date.now() % 100_000;
      const rng = createRng(seed);
      let killed = 0;
      for (let t = 1; t <= 4; t++) {
        const previous = readLockfile(bigRepo).data.big!.hash;
        writeBigVersion(bigRepo.root, t);
        const from = startup.ms;
        const delay = from + Math.floor(rng.next() * Math.max(1, calibration.ms - from));
        const where = `seed ${seed}, trial ${t}, killed after ${delay} ms`;
        if ((await runCli(bigRepo.root, ['add', 'big'], delay)).code === null) killed++;
        for (const [oid, p] of listObjects(bigRepo.cacheDir)) {
          expect(sha(fs.readFileSync(p)), `${where}: object ${oid}`).toBe(oid);
        }
        const now = readLockfile(bigRepo).data.big!.hash;
        const next = await runStoreCli(bigRepo.root, 'add', 'big', '--json');
        expect(next.code, `${where}: ${next.stderr}`).toBe(0);
        expect([previous, JSON.parse(next.stdout)[0].hash], where).toContain(now);
      }
      expect(killed, `seed ${seed}`).toBeGreaterThan(0);
    },
  );
});
