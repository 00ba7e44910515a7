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
/** The fixture's pause before each file a stage writes (LOCKSTEP_TEST_SLOW_MS). */
const SLOW_MS = 15;

let t: TmpRepo | undefined;
afterAll(async () => {
  await t?.cleanup();
});

/** When to SIGKILL a repro: `after` ms past its `line`-th stage line on stderr (0: past spawn). */
interface KillPoint {
  line: number;
  after: number;
}

/** A stage starting, as repro prints it: `train: running (...)`, `prepare: restoring outs (...)`. */
const STAGE_LINE = /^\w+: (running|restoring)/;

/**
 * Runs repro; with `kill`, SIGKILLs it at that point. Resolves with exit code (null if killed),
 * time and stderr. Kills are placed by the run's own progress, not by a clock calibrated on an
 * earlier run: on a machine whose load changes, a timed kill lands after the run has exited.
 */
function repro(
  root: string,
  kill?: KillPoint,
): Promise<{ code: number | null; ms: number; firstLineMs?: number; stderr: string }> {
  const started = Date.now();
  const child = spawn(process.execPath, [BIN, 'repro', '--pipeline', FIXTURE_PIPELINE], {
    cwd: root,
    env: { ...process.env, LOCKSTEP_TEST_SLOW_MS: String(SLOW_MS), LOCKSTEP_LOCK_TIMEOUT_MS: '20000' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let timer: NodeJS.Timeout | undefined;
  const arm = () => (timer ??= setTimeout(() => child.kill('SIGKILL'), kill!.after));
  if (kill?.line === 0) arm();
  let firstLineMs: number | undefined;
  child.stderr!.on('data', (d) => {
    stderr += d;
    // Lines may arrive split or together: count the stage lines in what came so far.
    const seen = stderr.split('\n').filter((l) => STAGE_LINE.test(l)).length;
    if (seen > 0) firstLineMs ??= Date.now() - started;
    if (kill && kill.line > 0 && seen >= kill.line) arm();
  });
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, ms: Date.now() - started, firstLineMs, stderr });
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
      // Trials change params, so train, evaluate and gate run each time (prepare runs, or is
      // restored from the run-cache): each prints at least these three stage lines.
      t.write('params.yaml', paramsFor(TRIALS + 1));
      const partial = await repro(t.root);
      expect(partial.code, partial.stderr).toBe(0);
      expect(partial.firstLineMs, partial.stderr).toBeDefined();
      const firstLineMs = partial.firstLineMs!;
      // Seeded, so a failing sequence of kill points can be replayed (LOCKSTEP_CRASH_SEED); set
      // but empty counts as unset.
      const given = process.env.LOCKSTEP_CRASH_SEED;
      const seed = given ? Number(given) : Date.now() % 100_000;
      expect(Number.isInteger(seed), `LOCKSTEP_CRASH_SEED=${given}: not an integer`).toBe(true);
      const random = rng(seed);
      const cache = new Cache(t.repo);
      let killedMidway = 0;
      for (let i = 1; i <= TRIALS; i++) {
        const before: Lockfile = parseLockfile(t.read('artifacts.lock.yaml'));
        t.write('params.yaml', paramsFor(i));
        // Line 0: during start-up, planning and hashing (before any stage line); line n: within
        // two of the fixture's pauses after the n-th stage started, so the stage is mid-write
        // or its outs and lockfile entry are being saved.
        const line = Math.floor(random() * 4);
        const delay = Math.round(line === 0 ? firstLineMs * random() : 2 * SLOW_MS * random());
        const r = await repro(t.root, { line, after: delay });
        if (r.code === null) killedMidway++;
        const where = `seed ${seed}, trial ${i}, killed ${delay} ms after stage line ${line}`;
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
      console.log(`repro crash trials (seed ${seed}): ${killedMidway} of ${TRIALS} killed before exit`);
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
