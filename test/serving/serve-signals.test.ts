/**
 * Stopping `lockstep serve` in one process (the serving container's CMD, where it is PID 1 and a
 * signal without a handler is ignored): a SIGTERM while the model is still loading stops the
 * server as soon as it is up, and a second signal during the drain exits at once.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeAudioModel } from '../support/audio-model.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { until, within } from '../support/wait.ts';

const BIN = path.resolve('bin/lockstep.mjs');
/** Longest a stop may take here: nothing in these tests needs the 10 s drain. */
const PROMPT_MS = 8_000;

let work: string;
let gcs: FakeGcs;
const children: ReturnType<typeof spawn>[] = [];

function modelFiles(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? modelFiles(dir, r) : [r];
  });
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-serve-signals-'));
  const clips = await makeTinyCorpus(path.join(work, 'corpus'), { speakers: 2 });
  await makeAudioModel(path.join(work, 'model'), clips, { epochs: 2 });
  gcs = await FakeGcs.start();
  for (const f of modelFiles(path.join(work, 'model')))
    gcs.putObject('models', `m/${f}`, fs.readFileSync(path.join(work, 'model', f)));
}, 120_000);
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  gcs.clearFaults();
});
afterAll(async () => {
  await gcs?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

/** Connections to the port are refused (the server stopped listening). */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => (c.destroy(), resolve(false)));
    c.once('error', () => resolve(true));
  });
}

/** `lockstep serve` of the model in the fake bucket, as the container runs it (one process). */
function serve() {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0'], {
    cwd: work,
    env: {
      ...process.env,
      AIP_STORAGE_URI: 'gs://models/m',
      STORAGE_EMULATOR_HOST: gcs.url,
      LOCKSTEP_LOG_URI: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const io = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d) => (io.stdout += d));
  child.stderr!.on('data', (d) => (io.stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, io, exited };
}

describe('lockstep serve alone stops on a signal whenever it comes', () => {
  it('a SIGTERM while the model is loading stops the server once it is up: exit 0, not killed by the signal', async () => {
    let release!: () => void;
    gcs.inject({ kind: 'list', times: Infinity, holdUntil: new Promise<void>((r) => (release = r)) });
    const before = gcs.count('list');
    const s = serve();
    // The model's listing is held: the process is in its start-up, past the CLI's loading.
    await until(() => gcs.count('list') > before || s.child.exitCode !== null, 'the model listing', 30_000);
    // The signal lands while the listing is held (before, with no handler yet, it killed the
    // process there); the load then finishes.
    s.child.kill('SIGTERM');
    release();
    const exit = await within(30_000, s.exited, 'serve to exit after a SIGTERM during start-up');
    expect(exit, s.io.stderr).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('a second SIGTERM during the drain exits at once with 143 and one line', async () => {
    const s = serve();
    await until(
      () => / on http:\/\/\S+ /.test(s.io.stdout) || s.child.exitCode !== null,
      'serve to start',
      30_000,
    );
    const port = Number(new URL(/ on (http:\/\/\S+) /.exec(s.io.stdout)![1]!).port);
    // A request whose body never ends holds the drain open. The server's "100 Continue" says it
    // has the request (a connection whose request it has not read yet would count as idle).
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n',
    );
    await until(() => answer.startsWith('HTTP/1.1 100 Continue'), 'the server to take the request', 30_000);
    socket.write('{');
    s.child.kill('SIGTERM');
    // Draining: the listener is closed while the request is still open.
    await until(() => refused(port), 'the port to close', 30_000);
    s.child.kill('SIGTERM');
    const exit = await within(PROMPT_MS, s.exited, 'serve to exit on a second SIGTERM');
    socket.destroy();
    expect(exit).toEqual({ code: 143, signal: null });
    expect(s.io.stderr).toMatch(/SIGTERM again: exiting at once/);
  }, 60_000);
});
