/**
 * Stopping `lockstep serve --workers 2` (a cluster primary and its worker processes, spawned as a
 * user or a container runs it): whatever state it is in when the signal comes (requests in flight,
 * idle keep-alive connections, workers still starting, a worker that crashed, a second signal, a
 * stuck worker), the primary exits within a bound, with its workers gone and their logs shipped.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import { SERVER_V8_FLAGS } from '../../lib/serving/young-generation.ts';
import { until, within } from '../support/wait.ts';
import {
  PROMPT_MS,
  alive,
  postInvalid,
  halfSent,
  refused,
  useServeWorkers,
} from '../support/serve-workers.ts';

const { spawnServe, shipped } = useServeWorkers();

describe('lockstep serve --workers 2 stops promptly', () => {
  it('SIGTERM with idle keep-alive connections and a request in flight: the request is answered, logs shipped, exit 0', async () => {
    const s = spawnServe();
    const { base, port } = await s.started();
    for (let i = 0; i < 6; i++) expect(await postInvalid(base)).toBe(400);
    // Idle keep-alive connections, spread over both workers.
    const idle: net.Socket[] = [];
    for (let i = 0; i < 6; i++) {
      const c = net.connect(port, '127.0.0.1');
      c.on('error', () => undefined);
      c.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise((r) => c.once('data', r));
      idle.push(c);
    }
    const inFlight = await halfSent(port);
    const workers = s.workers();
    expect(workers).toHaveLength(2);
    s.child.kill('SIGTERM');
    // Both workers stopped accepting; the one holding the request still waits for its body.
    await until(() => refused(port), 'the port to close');
    inFlight.finish();
    expect(await within(PROMPT_MS, inFlight.response, 'the in-flight response')).toMatch(/^HTTP\/1\.1 400 /);
    expect(await within(PROMPT_MS, s.exited, 'serve to exit after SIGTERM')).toEqual({
      code: 0,
      signal: null,
    });
    expect(workers.filter(alive)).toEqual([]);
    // Every answered request was logged and shipped by the worker that answered it.
    expect((await shipped()).length).toBe(7);
    idle.forEach((c) => c.destroy());
  }, 60_000);

  it('SIGTERM while the workers are still starting: exit 0, no worker left', async () => {
    const s = spawnServe();
    await until(() => s.workers().length === 2, 'the workers to be forked');
    const workers = s.workers();
    expect(s.io.stdout).not.toMatch(/ on http/);
    s.child.kill('SIGTERM');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit after SIGTERM')).toEqual({
      code: 0,
      signal: null,
    });
    expect(workers.filter(alive)).toEqual([]);
  }, 60_000);

  it('a second SIGTERM while draining stops at once with 143 and one line, no worker left', async () => {
    const s = spawnServe();
    const { port } = await s.started();
    // Held open for the whole test: without the second signal the drain would last 10 s.
    const inFlight = await halfSent(port);
    const workers = s.workers();
    s.child.kill('SIGTERM');
    await until(() => refused(port), 'the port to close');
    s.child.kill('SIGTERM');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit after two SIGTERMs')).toEqual({
      code: 143,
      signal: null,
    });
    expect(s.io.stderr).toMatch(/^lockstep: serve: stopped at once on a second SIGTERM: [^\n]*\n$/m);
    expect(workers.filter(alive)).toEqual([]);
    inFlight.socket.destroy();
  }, 60_000);

  it('a worker that crashed earlier: the other keeps serving, SIGTERM still exits 0', async () => {
    const s = spawnServe();
    const { base } = await s.started();
    const [first, second] = s.workers();
    // Each worker runs with the server's fixed young generation (lib/serving/young-generation.ts).
    for (const pid of [first, second]) {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const flag of SERVER_V8_FLAGS) expect(argv).toContain(flag);
    }
    process.kill(first, 'SIGKILL');
    await until(
      () => /exited with SIGKILL; 1 of 2 still serving/.test(s.io.stderr),
      'the crash to be reported',
    );
    for (let i = 0; i < 3; i++) expect(await postInvalid(base)).toBe(400);
    s.child.kill('SIGTERM');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit after SIGTERM')).toEqual({
      code: 0,
      signal: null,
    });
    expect(alive(second)).toBe(false);
    expect((await shipped()).length).toBe(3);
  }, 60_000);

  it('Ctrl-C (SIGINT to the whole process group): workers drain and ship, exit 0', async () => {
    const s = spawnServe();
    const { base } = await s.started();
    for (let i = 0; i < 4; i++) expect(await postInvalid(base)).toBe(400);
    const workers = s.workers();
    process.kill(-s.child.pid!, 'SIGINT');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit after SIGINT')).toEqual({
      code: 0,
      signal: null,
    });
    expect(workers.filter(alive)).toEqual([]);
    expect((await shipped()).length).toBe(4);
  }, 60_000);

  it('a worker that cannot start (its port taken): the primary exits 2 with the reason, no worker left', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (taken.address() as net.AddressInfo).port;
      const s = spawnServe(['--port', String(port)]);
      await until(() => s.workers().length === 2 || s.child.exitCode !== null, 'the workers to be forked');
      const workers = s.workers();
      expect(await within(PROMPT_MS * 2, s.exited, 'serve to give up')).toEqual({ code: 2, signal: null });
      expect(s.io.stderr).toMatch(/EADDRINUSE/);
      expect(s.io.stderr).toMatch(
        /^lockstep: serve: a worker exited with code 1 while starting\. Run without --workers to see why\.$/m,
      );
      expect(workers).toHaveLength(2);
      expect(workers.filter(alive)).toEqual([]);
    } finally {
      taken.close();
    }
  }, 60_000);

  it('a worker that dies while it drains: exit 1 with one line naming it, no worker left', async () => {
    const s = spawnServe();
    await s.started();
    const [dying, other] = s.workers();
    // Held still so it cannot drain before it is killed; the other stops as usual.
    process.kill(dying, 'SIGSTOP');
    s.child.kill('SIGTERM');
    await until(() => !alive(other), 'the other worker to stop');
    process.kill(dying, 'SIGKILL');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit after a worker died stopping')).toEqual({
      code: 1,
      signal: null,
    });
    expect(s.io.stderr).toMatch(
      new RegExp(
        `^lockstep: serve: worker process ${dying} exited with SIGKILL while stopping after SIGTERM; [^\\n]*$`,
        'm',
      ),
    );
    expect([dying, other].filter(alive)).toEqual([]);
  }, 60_000);

  it('a worker that does not stop is killed after --stop-timeout: exit 1 with one line', async () => {
    const s = spawnServe(['--stop-timeout', '1']);
    await s.started();
    const [stuck, other] = s.workers();
    process.kill(stuck, 'SIGSTOP');
    s.child.kill('SIGTERM');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit with a stuck worker')).toEqual({
      code: 1,
      signal: null,
    });
    expect(s.io.stderr).toMatch(
      /^lockstep: serve: 1 worker process\(es\) still running 1 s after SIGTERM, killed; [^\n]*--stop-timeout[^\n]*$/m,
    );
    expect([stuck, other].filter(alive)).toEqual([]);
  }, 60_000);
});
