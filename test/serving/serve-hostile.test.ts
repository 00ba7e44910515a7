/**
 * Hostile stops of `lockstep serve --workers 2` (a cluster primary and its worker processes, spawned as a
 * user or a container runs it): whatever state it is in when the signal comes (requests in flight,
 * idle keep-alive connections, workers still starting, a worker that crashed, a second signal, a
 * stuck worker), the primary exits within a bound, with its workers gone and their logs shipped.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { readLogs } from '../../lib/monitoring/logs.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { until, within } from '../support/wait.ts';

const BIN = path.resolve('bin/lockstep.mjs');
const BUCKET = 'stop-bucket';
/** Longest a stop may take here: nothing in these tests needs the 10 s drain or the 15 s upload limit. */
const PROMPT_MS = 8_000;

let fake: FakeGcs;
let t: TmpRepo;
const spawned: ChildProcess[] = [];

beforeEach(async () => {
  fake = await FakeGcs.start();
  t = await createTmpRepo({
    'promotion/dev.yaml': `branch: dev\nendpoint: { kind: local }\nlogs: gs://${BUCKET}/dev\n`,
  });
});
afterEach(async () => {
  for (const c of spawned.splice(0)) {
    childPids(c.pid!);
    if (c.exitCode === null && c.signalCode === null) killQuietly(c.pid!, 'SIGKILL');
  }
  for (const pid of seenWorkers) killQuietly(pid, 'SIGKILL');
  seenWorkers.clear();
  await fake.close();
  await t.cleanup();
});

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Every worker pid seen, killed after each test whatever became of its primary. */
const seenWorkers = new Set<number>();

/**
 * Pids of the worker processes of a primary: its children running the CLI (not, say, the
 * build a stale dist/ starts).
 */
function childPids(pid: number): number[] {
  let pids: number[];
  try {
    pids = fs
      .readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
  const workers = pids.filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').includes(BIN);
    } catch {
      return false;
    }
  });
  workers.forEach((p) => seenWorkers.add(p));
  return workers;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Spawns `lockstep serve --workers 2` in the test repo (its own process group, as a shell job). */
function spawnServe(args: string[] = []) {
  const child = spawn(process.execPath, [BIN, 'serve', '--env', 'dev', '--workers', '2', ...args], {
    cwd: t.root,
    env: { ...process.env, STORAGE_EMULATOR_HOST: fake.url, LOCKSTEP_LOG_URI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  spawned.push(child);
  const io = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d) => (io.stdout += d));
  child.stderr!.on('data', (d) => (io.stderr += d));
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const started = async () => {
    await until(() => / on http:\/\/\S+ /.test(io.stdout) || child.exitCode !== null, 'serve to start');
    const base = / on (http:\/\/\S+) /.exec(io.stdout)?.[1];
    if (!base) throw new Error(`serve did not start: ${io.stderr}`);
    return { base, port: Number(new URL(base).port) };
  };
  return { child, io, exited, started, workers: () => childPids(child.pid!) };
}

/** An invalid prediction (400, logged as `invalid`): one log line per request, no model needed. */
async function postInvalid(base: string): Promise<number> {
  const res = await fetch(`${base}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [] }),
  });
  await res.arrayBuffer();
  return res.status;
}

const shipped = () => readLogs(`gs://${BUCKET}/dev`, { apiEndpoint: fake.url });

describe('lockstep serve --workers 2 under hostile stops', () => {
  it('both workers die while they drain: exit 1 with one line naming both, no worker left', async () => {
    const s = spawnServe();
    await s.started();
    const workers = s.workers();
    expect(workers).toHaveLength(2);
    for (const w of workers) process.kill(w, 'SIGSTOP');
    s.child.kill('SIGTERM');
    for (const w of workers) process.kill(w, 'SIGKILL');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit')).toEqual({ code: 1, signal: null });
    const lines = s.io.stderr.split('\n').filter((l) => l.startsWith('lockstep: '));
    expect(lines).toHaveLength(1);
    for (const w of workers) expect(lines[0]).toContain(`worker process ${w} exited with SIGKILL`);
  }, 60_000);

  it('a worker killed while it starts: the primary exits (2, as for a worker that cannot start) with one line, no worker left', async () => {
    const s = spawnServe();
    await until(() => s.workers().length === 2, 'the workers to be forked');
    const workers = s.workers();
    process.kill(workers[0]!, 'SIGKILL');
    const exit = await within(PROMPT_MS, s.exited, 'serve to exit');
    await until(() => workers.filter(alive).length === 0, 'the workers to be gone', 5_000);
    expect(exit).toEqual({ code: 2, signal: null });
    expect(s.io.stderr).toMatch(/^lockstep: serve: a worker exited with SIGKILL while starting\. [^\n]*$/m);
  }, 60_000);

  it('Ctrl-C (SIGINT to the whole process group) while serving: every worker drains, exit 0', async () => {
    const s = spawnServe();
    const { base } = await s.started();
    expect(await postInvalid(base)).toBe(400);
    const workers = s.workers();
    process.kill(-s.child.pid!, 'SIGINT');
    const exit = await within(PROMPT_MS, s.exited, 'serve to exit');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(workers.filter(alive)).toEqual([]);
    expect((await shipped()).length).toBe(1);
  }, 60_000);
});
