/**
 * Crash safety: `lockstep repro` killed with SIGKILL at random points leaves a cache whose every
 * object matches its hash, and a lockfile in which each stage entry is either the one from
 * before the run or a complete new one (params of the new run, outs fully in the cache); the
 * next run completes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseLockfile } from '../../lib/lockfile.ts';
import { Cache } from '../../lib/store/cache.ts';
import { isInCache } from '../../lib/pipeline/plan.ts';
import { isArtifactCurrent } from '../../lib/store/artifacts.ts';
import type { Lockfile } from '../../lib/types.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { createPipelineRepo, FIXTURE_PIPELINE } from './helpers.ts';

const BIN = fileURLToPath(new URL('../../bin/lockstep.mjs', import.meta.url));
const TRIALS = 20;

let t: TmpRepo | undefined;
afterAll(async () => {
  await t?.cleanup();
});

/** Runs repro; with `killAfterMs`, SIGKILLs it then. Resolves with exit code (null if killed) and time. */
function repro(
  root: string,
  killAfterMs?: number,
): Promise<{ code: number | null; ms: number; stderr: string }> {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, 'repro', '--pipeline', FIXTURE_PIPELINE], {
    cwd: root,
    env: { ...process.env, LOCKSTEP_TEST_SLOW_MS: '15', LOCKSTEP_LOCK_TIMEOUT_MS: '20000' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, ms: Date.now() - started, stderr });
    });
  });
}

/** Every object in the cache hashes to its name; returns how many were checked. */
function verifyCacheObjects(cacheDir: string): number {
  const root = path.join(cacheDir, 'sha256');
  if (!fs.existsSync(root)) return 0;
  let n = 0;
  for (const prefix of fs.readdirSync(root)) {
    if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
    for (const rest of fs.readdirSync(path.join(root, prefix))) {
      if (!/^[0-9a-f]{62}$/.test(rest)) continue;
      const bytes = fs.readFileSync(path.join(root, prefix, rest));
      expect(createHash('sha256').update(bytes).digest('hex'), `${prefix}/${rest}`).toBe(prefix + rest);
      n++;
    }
  }
  return n;
}

/** A simple seeded generator so a failing trial sequence can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const paramsFor = (i: number) =>
  `data:\n  seed: ${1 + (i % 2)}\ntrain:\n  lr: ${0.01 + 0.0001 * i}\n  epochs: 3\n`;

describe('crash safety', () => {
  it(
    'repro killed with SIGKILL at random points keeps the cache verified and the lockfile old-or-new',
    { timeout: 180_000 },
    async () => {
      t = await createPipelineRepo(paramsFor(0));
      const full = await repro(t.root);
      expect(full.code, full.stderr).toBe(0);
      // Trials change params, so only part of the pipeline runs: time such a run and kill within it
      // (relative to the full run, a fast machine finishes most trials before the kill).
      t.write('params.yaml', paramsFor(TRIALS + 1));
      const partial = await repro(t.root);
      expect(partial.code, partial.stderr).toBe(0);
      const seed = Number(process.env.LOCKSTEP_CRASH_SEED ?? Date.now() % 100_000);
      const random = rng(seed);
      const cache = new Cache(t.repo);
      let killedMidway = 0;
      for (let i = 1; i <= TRIALS; i++) {
        const before: Lockfile = parseLockfile(t.read('artifacts.lock.yaml'));
        t.write('params.yaml', paramsFor(i));
        const delay = Math.round(partial.ms * (0.15 + 0.75 * random()));
        const r = await repro(t.root, delay);
        if (r.code === null) killedMidway++;
        const where = `seed ${seed}, trial ${i}, killed after ${delay} ms`;
        expect(verifyCacheObjects(t.repo.cacheDir), where).toBeGreaterThan(0);
        const after = parseLockfile(t.read('artifacts.lock.yaml'), 'artifacts.lock.yaml');
        const lr = 0.01 + 0.0001 * i;
        for (const [name, entry] of Object.entries(after.stages)) {
          if (JSON.stringify(entry) === JSON.stringify(before.stages[name])) continue;
          // A new entry is complete: it belongs to this run and its outs are all in the cache.
          if ('train.lr' in entry.params) expect(entry.params['train.lr'], `${where}: ${name}`).toBe(lr);
          for (const out of entry.outs)
            expect(await isInCache(t.repo, cache, out), `${where}: ${name} ${out.path}`).toBe(true);
        }
        // A kill between writing and renaming the lockfile leaves no debris in the work tree.
        expect(
          fs.readdirSync(t.root).filter((f) => f.endsWith('.tmp')),
          where,
        ).toEqual([]);
      }
      expect(killedMidway).toBeGreaterThanOrEqual(TRIALS / 2);
      // The next run completes, from whatever state the last kill left.
      const last = await repro(t.root);
      expect(last.code, last.stderr).toBe(0);
      const final = parseLockfile(t.read('artifacts.lock.yaml'));
      expect(final.stages.train!.params['train.lr']).toBe(0.01 + 0.0001 * TRIALS);
      for (const entry of Object.values(final.stages)) {
        for (const out of entry.outs) expect(await isArtifactCurrent(t.repo, out)).toBe(true);
      }
      verifyCacheObjects(t.repo.cacheDir);
      const again = await repro(t.root);
      expect(again.code).toBe(0);
      // Temp files the killed runs left in .lockstep/tmp were swept by the runs after them.
      expect(fs.existsSync(t.repo.tmpDir) ? fs.readdirSync(t.repo.tmpDir) : []).toEqual([]);
    },
  );
});

describe('interrupt', () => {
  it(
    'repro interrupted with SIGINT finishes running stages, locks them, and exits 130',
    { timeout: 60_000 },
    async () => {
      const r = await createPipelineRepo();
      try {
        const child = spawn(process.execPath, [BIN, 'repro', '--jobs', '2', '--pipeline', FIXTURE_PIPELINE], {
          cwd: r.root,
          env: { ...process.env, LOCKSTEP_TEST_SLOW_MS: '250' },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        let sent = false;
        child.stderr!.on('data', (d) => {
          stderr += d;
          if (!sent && stderr.includes('prepare: running')) {
            sent = true;
            child.kill('SIGINT');
          }
        });
        const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
        expect(code, stderr).toBe(130);
        const lines = stderr.trim().split('\n');
        expect(lines.at(-1)).toBe(
          'lockstep: repro: interrupted; not run: train, evaluate, gate. Completed stages are locked; run lockstep repro again to continue.',
        );
        expect(Object.keys(parseLockfile(r.read('artifacts.lock.yaml')).stages).sort()).toEqual([
          'prepare',
          'report',
        ]);
        expect(fs.existsSync(path.join(r.root, '.lockstep/lock'))).toBe(false);
        const next = await repro(r.root);
        expect(next.code, next.stderr).toBe(0);
        expect(next.stderr).not.toContain('prepare: running');
        expect(next.stderr).toContain('train: running');
      } finally {
        await r.cleanup();
      }
    },
  );
});
