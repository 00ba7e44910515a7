/**
 * `lockstep serve --workers 2` spawned as a user or a container runs it, for the tests that stop
 * it (test/serving/serve-stop.test.ts, serve-hostile.test.ts): a test repo whose dev environment
 * ships its prediction logs to a fake Cloud Storage, the primary in its own process group, and
 * every primary and worker killed after each test whatever became of it.
 */
import { afterEach, beforeEach } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { readLogs } from '../../lib/monitoring/logs.ts';
import { FakeGcs } from './fake-gcs.ts';
import { createTmpRepo, type TmpRepo } from './tmp-repo.ts';
import { until } from './wait.ts';

export const BIN = path.resolve('bin/lockstep.mjs');
const BUCKET = 'stop-bucket';
/** Longest a stop may take here: nothing in these tests needs the 10 s drain or the 15 s upload limit. */
export const PROMPT_MS = 8_000;

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

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** An invalid prediction (400, logged as `invalid`): one log line per request, no model needed. */
export async function postInvalid(base: string): Promise<number> {
  const res = await fetch(`${base}/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ instances: [] }),
  });
  await res.arrayBuffer();
  return res.status;
}

/** Opens a connection and sends all of a predict request but the end of its body. */
export async function halfSent(
  port: number,
): Promise<{ socket: net.Socket; response: Promise<string>; finish: () => void }> {
  const body = JSON.stringify({ instances: [] });
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  socket.write(
    `POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
  );
  let text = '';
  socket.on('data', (d) => (text += d));
  const response = new Promise<string>((resolve) => socket.once('close', () => resolve(text)));
  return { socket, response, finish: () => socket.end(body.slice(5)) };
}

/** Connections to the port are refused (every worker stopped listening). */
export function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

/**
 * Registers the test repo and fake Cloud Storage around each test of the calling file, and returns
 * how to spawn the server there and read the logs it shipped.
 */
export function useServeWorkers() {
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

  const shipped = () => readLogs(`gs://${BUCKET}/dev`, { apiEndpoint: fake.url });
  return { spawnServe, shipped };
}
