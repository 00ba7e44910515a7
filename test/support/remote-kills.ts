/**
 * SIGKILL trials of `lockstep push` and `lockstep pull` against the fake GCS server (shared by
 * test/store/gcs-kill.test.ts, a few trials, and `npm run bench -- faults`, many). Each trial
 * kills the command at a random point (seeded: LOCKSTEP_KILL_SEED replays one) between late
 * start-up and just past a normal run's end, then checks every object on the remote (push) or in
 * the cache (pull) against its name, runs the command again to completion and counts objects
 * that were transferred a second time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createRng, type Rng } from '../../lib/rng.ts';
import type { FakeGcs } from './fake-gcs.ts';

const BIN = fileURLToPath(new URL('../../bin/lockstep.mjs', import.meta.url));
const BUCKET = 'kill-bucket';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

export interface KillFigures {
  /** Seed of the kill points (LOCKSTEP_KILL_SEED replays a sequence). */
  seed: number;
  trials: number;
  /** Trials whose kill landed before the command exited. */
  killed: number;
  objectsChecked: number;
  /** Objects whose bytes do not match their name (must be 0). */
  badObjects: number;
  /** Objects finished before the kill and sent again by the next run (must be 0). */
  transferredTwice: number;
  /** Next runs that failed (must be 0), and the first one's stderr. */
  failedReruns: number;
  firstFailure?: string;
}

/**
 * Runs the CLI; `kill` is either a delay in ms or a function that gets the kill switch and
 * returns its own clean-up (an event-driven kill).
 */
function run(
  cwd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  kill?: number | ((killNow: () => void) => () => void),
): Promise<{ code: number | null; ms: number; stderr: string }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const killNow = () => child.kill('SIGKILL');
    const timer = typeof kill === 'number' ? setTimeout(killNow, kill) : undefined;
    const stop = typeof kill === 'function' ? kill(killNow) : undefined;
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      stop?.();
      resolve({ code, ms: Date.now() - started, stderr });
    });
  });
}

function git(cwd: string, ...args: string[]): void {
  execFileSync('git', args, { cwd, stdio: 'ignore' });
}

/** A repository with `files` tracked files (a few large enough for resumable uploads). */
async function makeRepo(root: string, files: number, prefix: string, env: NodeJS.ProcessEnv): Promise<void> {
  fs.mkdirSync(path.join(root, 'data'), { recursive: true });
  for (let i = 0; i < files; i++) {
    const size = i % 50 === 0 ? 600_000 : 2_000 + (i % 13) * 500;
    fs.writeFileSync(path.join(root, 'data', `f${String(i).padStart(4, '0')}.bin`), randomBytes(size));
  }
  fs.mkdirSync(path.join(root, '.lockstep'), { recursive: true });
  fs.writeFileSync(path.join(root, '.lockstep', 'config.yaml'), remoteConfig(prefix));
  git(root, 'init', '-q');
  const added = await run(root, ['add', 'data'], env);
  if (added.code !== 0) throw new Error(`add failed: ${added.stderr}`);
}

/** Oid -> bytes of every object under the prefix of the fake bucket. */
function remoteObjects(fake: FakeGcs, prefix: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const name of fake.names(BUCKET)) {
    const m = new RegExp(`^${prefix}/sha256/([0-9a-f]{2})/([0-9a-f]{62})$`).exec(name);
    if (m) out.set(m[1]! + m[2]!, fake.object(BUCKET, name)!.data);
  }
  return out;
}

function cacheObjects(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const base = path.join(root, '.lockstep', 'cache', 'sha256');
  if (!fs.existsSync(base)) return out;
  for (const a of fs.readdirSync(base))
    for (const b of fs.readdirSync(path.join(base, a))) out.set(a + b, path.join(base, a, b));
  return out;
}

/** The CLI's environment: the fake as the storage endpoint, no remote override. */
function cliEnv(fake: FakeGcs): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, STORAGE_EMULATOR_HOST: fake.url, NO_COLOR: '1' };
  delete env.LOCKSTEP_REMOTE;
  return env;
}

/** The kill points' generator: LOCKSTEP_KILL_SEED if set, else a fresh seed (reported). */
function killRng(): { seed: number; rng: Rng } {
  const given = process.env.LOCKSTEP_KILL_SEED;
  const seed = given ? Number(given) : Date.now() % 1_000_000;
  return { seed, rng: createRng(seed) };
}

function noFigures(seed: number, trials: number): KillFigures {
  return { seed, trials, killed: 0, objectsChecked: 0, badObjects: 0, transferredTwice: 0, failedReruns: 0 };
}

function noteRerun(f: KillFigures, rerun: { code: number | null; stderr: string }): void {
  if (rerun.code === 0) return;
  f.failedReruns++;
  f.firstFailure ??= rerun.stderr.trim().split('\n').slice(-3).join(' | ');
}

/** `.lockstep/config.yaml` naming the fake bucket under `prefix` as the default remote. */
function remoteConfig(prefix: string): string {
  return `remote: shared\nremotes:\n  shared:\n    url: gs://${BUCKET}/${prefix}\n`;
}

/** The oid of an object name `<prefix>/sha256/ab/cdef...`, if it is one. */
function oidOfName(name: string): string | undefined {
  const m = /sha256\/([0-9a-f]{2})\/([0-9a-f]{62})$/.exec(name);
  return m ? m[1]! + m[2]! : undefined;
}

const delayWithin = (rng: Rng, startupMs: number, fullMs: number) => {
  const from = Math.floor(startupMs * 0.7);
  return from + Math.floor(rng.next() * Math.max(1, fullMs + 50 - from));
};

/** A kill on the `count`-th call of the listener `subscribe` registers (see `run`). */
function killOnEvent(
  subscribe: (listener: () => void) => () => void,
  count: number,
): (killNow: () => void) => () => void {
  return (killNow) => {
    let seen = 0;
    return subscribe(() => {
      if (++seen === count) killNow();
    });
  };
}

/** Push trials: a fresh prefix each, killed once, then completed. */
export async function pushKillTrials(fake: FakeGcs, trials: number, files = 120): Promise<KillFigures> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-kill-push-'));
  const env = cliEnv(fake);
  const { seed, rng } = killRng();
  const f = noFigures(seed, trials);
  try {
    await makeRepo(root, files, 'calibrate', env);
    const startup = await run(root, ['--help'], env);
    const calibration = await run(root, ['push'], env);
    if (calibration.code !== 0) throw new Error(`push failed: ${calibration.stderr}`);
    for (let t = 0; t < trials; t++) {
      const prefix = `trial${t}`;
      const configPath = path.join(root, '.lockstep', 'config.yaml');
      fs.writeFileSync(configPath, remoteConfig(prefix));
      // Timed kills land anywhere, so on a slow machine every one may come before the first
      // upload; the last trial is killed on an event instead: once a few objects are stored.
      const onEvent = t === trials - 1 && f.objectsChecked === 0;
      const after = 1 + Math.floor(rng.next() * Math.max(1, files / 4));
      const kill = onEvent
        ? killOnEvent(
            (listener) =>
              fake.onStore((bucket, name) => {
                if (bucket === BUCKET && name.startsWith(`${prefix}/`)) listener();
              }),
            after,
          )
        : delayWithin(rng, startup.ms, calibration.ms);
      const killed = await run(root, ['push'], env, kill);
      if (killed.code === null) f.killed++;
      const before = remoteObjects(fake, prefix);
      for (const [oid, data] of before) {
        f.objectsChecked++;
        if (sha(data) !== oid) f.badObjects++;
      }
      fake.resetLog();
      const rerun = await run(root, ['push'], env);
      noteRerun(f, rerun);
      for (const r of fake.requests) {
        if ((r.kind !== 'upload' && r.kind !== 'upload-init') || !r.name) continue;
        const oid = oidOfName(r.name);
        if (oid && before.has(oid)) f.transferredTwice++;
      }
      for (const [oid, data] of remoteObjects(fake, prefix)) if (sha(data) !== oid) f.badObjects++;
    }
    return f;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** Pull trials: an emptied cache each, killed once, then completed. */
export async function pullKillTrials(fake: FakeGcs, trials: number, files = 120): Promise<KillFigures> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-kill-pull-'));
  const env = cliEnv(fake);
  const { seed, rng } = killRng();
  const f = noFigures(seed, trials);
  try {
    await makeRepo(root, files, 'pull', env);
    const pushed = await run(root, ['push'], env);
    if (pushed.code !== 0) throw new Error(`push failed: ${pushed.stderr}`);
    const startup = await run(root, ['--help'], env);
    const cacheDir = path.join(root, '.lockstep', 'cache');
    fs.rmSync(cacheDir, { recursive: true, force: true });
    const calibration = await run(root, ['pull'], env);
    if (calibration.code !== 0) throw new Error(`pull failed: ${calibration.stderr}`);
    for (let t = 0; t < trials; t++) {
      fs.rmSync(cacheDir, { recursive: true, force: true });
      // A pull reads and compares before it downloads: aim the kills at its second half. As for
      // push, the last trial is killed on an event if no earlier one left objects to check: once
      // a few objects are in the cache (watched every few ms; the cache is where they land).
      const onEvent = t === trials - 1 && f.objectsChecked === 0;
      const after = 1 + Math.floor(rng.next() * Math.max(1, files / 4));
      const kill = onEvent
        ? (killNow: () => void) => {
            const watch = setInterval(() => {
              if (cacheObjects(root).size >= after) killNow();
            }, 5);
            return () => clearInterval(watch);
          }
        : delayWithin(rng, Math.max(startup.ms, calibration.ms * 0.8), calibration.ms);
      const killed = await run(root, ['pull'], env, kill);
      if (killed.code === null) f.killed++;
      const before = cacheObjects(root);
      for (const [oid, file] of before) {
        f.objectsChecked++;
        if (sha(fs.readFileSync(file)) !== oid) f.badObjects++;
      }
      fake.resetLog();
      const rerun = await run(root, ['pull'], env);
      noteRerun(f, rerun);
      for (const r of fake.requests) {
        if (r.kind !== 'download' || !r.name) continue;
        const oid = oidOfName(r.name);
        if (oid && before.has(oid)) f.transferredTwice++;
      }
      for (const [oid, file] of cacheObjects(root)) if (sha(fs.readFileSync(file)) !== oid) f.badObjects++;
    }
    return f;
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
