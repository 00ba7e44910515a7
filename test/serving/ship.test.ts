/**
 * Log shipping against the fake GCS server (real HTTP on 127.0.0.1, the real
 * `@google-cloud/storage` client): a real server and PredictionLog, uploads only when a file
 * grew, rotation, the tail on shutdown, monitoring's reader on the shipped objects, failures that
 * never throw, and `lockstep serve` shipping to the policy's `logs:`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import type { FastifyInstance } from 'fastify';
import { startServer } from '../../lib/serving/server.ts';
import { staticSource } from '../../lib/serving/router.ts';
import { PredictionLog, listLogFiles, readPredictionLogs } from '../../lib/serving/logs.ts';
import {
  LogShipper,
  resolveShipTarget,
  sanitizeInstance,
  shipInstanceId,
  type LogShipperOptions,
} from '../../lib/serving/ship.ts';
import { readLogs } from '../../lib/monitoring/logs.ts';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { createTmpRepo } from '../support/tmp-repo.ts';
import { fixtureLoader, freqForClass, toneWav, writeFixtureModel } from '../support/fixture-model.ts';
import { until, within } from '../support/wait.ts';

const BUCKET = 'logs-bucket';
const BIN = path.resolve('bin/lockstep.mjs');
let tmp: string;
let fake: FakeGcs;
let app: FastifyInstance | undefined;

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ship-'));
  fake = await FakeGcs.start();
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  await fake.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A server on a fixture model writing to `log`; returns its predict URL. */
async function serveWith(log: PredictionLog): Promise<string> {
  const dir = path.join(tmp, 'model');
  writeFixtureModel(dir);
  const model = await fixtureLoader(dir);
  const source = staticSource([{ deployedModelId: '7', modelVersionId: 'v1', model, percent: 100 }]);
  const started = await startServer({ source, env: 'dev', log });
  app = started.app;
  return `${started.url}/predict`;
}

async function predict(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const audio = toneWav(freqForClass(i % 7), 0.3).toString('base64');
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ audio }] }),
    });
    expect(res.status).toBe(200);
  }
}

function shipper(log: PredictionLog, extra: LogShipperOptions = {}): LogShipper {
  return new LogShipper(log, `gs://${BUCKET}/serving/dev`, {
    apiEndpoint: fake.url,
    projectId: 'p',
    instance: 'host-1',
    intervalMs: 0,
    ...extra,
  });
}

/** A hold for a fake GCS answer, released by the test. */
function hold(): { until: Promise<void>; release: () => void } {
  let release = () => {};
  const until = new Promise<void>((resolve) => (release = resolve));
  return { until, release };
}

describe('log shipper', () => {
  it('log shipper uploads only grown files, keeps rotated files, ships the tail on stop, and monitor reads exactly the predictions', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'), { maxBytes: 6000 });
    const url = await serveWith(log);
    const s = shipper(log);

    await predict(url, 3);
    log.flush();
    const first = await s.tick();
    expect(first).toEqual({ uploaded: [`serving/dev/host-1/${path.basename(log.files()[0])}`] });
    expect(fake.count('upload')).toBe(1);

    // Nothing new: no request at all.
    const before = fake.count();
    expect(await s.tick()).toEqual({ uploaded: [] });
    expect(fake.count()).toBe(before);

    // Enough lines to rotate: the full first file and the new one are both uploaded.
    await predict(url, 12);
    log.flush();
    expect(log.files().length).toBeGreaterThanOrEqual(2);
    const second = await s.tick();
    expect(second.uploaded).toHaveLength(log.files().length);
    const names = log.files().map((f) => `serving/dev/host-1/${path.basename(f)}`);
    expect(fake.names(BUCKET)).toEqual(names);
    for (const f of log.files()) {
      expect(fake.object(BUCKET, `serving/dev/host-1/${path.basename(f)}`)!.data).toEqual(fs.readFileSync(f));
    }

    // The rotated files are final: more traffic only uploads the current file (and a new one).
    const final = names.slice(0, -1);
    await predict(url, 2);
    log.flush();
    const uploads = fake.count('upload');
    const third = await s.tick();
    expect(third.uploaded).toContain(names[names.length - 1]);
    expect(third.uploaded.filter((n) => final.includes(n))).toEqual([]);
    expect(fake.count('upload')).toBe(uploads + third.uploaded.length);

    // Lines written after the last tick are shipped by stop() (which flushes the log first).
    await predict(url, 2);
    await app!.close();
    app = undefined;
    const last = await s.stop();
    expect(last.failed).toBeUndefined();
    expect(last.uploaded.length).toBeGreaterThanOrEqual(1);

    const local = readPredictionLogs(log.dir);
    expect(local).toHaveLength(19);
    const shipped = await readLogs(`gs://${BUCKET}/serving`, { apiEndpoint: fake.url, projectId: 'p' });
    expect(shipped).toEqual(local);
    expect(shipped.every((e) => e.status === 'ok' && e.deployedModelId === '7')).toBe(true);
  });

  it('log shipper only ships files its own log wrote', async () => {
    const dir = path.join(tmp, 'logs');
    const log = new PredictionLog(dir);
    log.write({ time: new Date().toISOString(), env: 'dev', status: 'invalid', latencyMs: 1 });
    log.flush();
    // Another process's file in the same folder (a CLI predict, an earlier server).
    fs.writeFileSync(
      path.join(dir, 'predictions-20200101T000000000Z-1-1.jsonl'),
      JSON.stringify({ time: new Date().toISOString(), env: 'dev', status: 'ok', latencyMs: 1 }) + '\n',
    );
    expect(listLogFiles(dir)).toHaveLength(2);
    const s = shipper(log);
    expect((await s.tick()).uploaded).toEqual([`serving/dev/host-1/${path.basename(log.files()[0])}`]);
    expect(await s.tick()).toEqual({ uploaded: [] });
  });

  it('log shipper timer ships periodically without holding the process', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'));
    const s = shipper(log, { intervalMs: 40 }).start();
    log.write({ time: new Date().toISOString(), env: 'dev', status: 'ok', latencyMs: 1 });
    await until(() => fake.names(BUCKET).length === 1, 'the first periodic upload');
    log.write({ time: new Date().toISOString(), env: 'dev', status: 'ok', latencyMs: 2 });
    await until(
      () => (fake.object(BUCKET, fake.names(BUCKET)[0])?.data.toString().split('\n').length ?? 0) === 3,
      'the second periodic upload',
    );
    await s.stop();
    const uploads = fake.count('upload');
    await new Promise((r) => setTimeout(r, 120));
    expect(fake.count('upload')).toBe(uploads);
  });

  it('log shipper survives a 503 and a dead server, says so once on stderr and catches up at the next tick', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'));
    const warnings: string[] = [];
    const s = shipper(log, { warn: (l) => warnings.push(l) });
    log.write({ time: new Date().toISOString(), env: 'dev', status: 'ok', latencyMs: 1 });
    log.flush();

    fake.inject({ kind: 'upload', status: 503, times: 2 });
    const failed = await s.tick();
    expect(failed.uploaded).toEqual([]);
    expect(failed.failed).toMatch(
      /^log shipping: gs:\/\/logs-bucket\/serving\/dev\/host-1\/predictions-.*\.jsonl: upload failed with HTTP 503 .*retrying/,
    );
    expect((await s.tick()).failed).toBe(failed.failed);
    expect(warnings).toEqual([failed.failed]); // the same problem is reported once
    expect(fake.names(BUCKET)).toEqual([]);

    const ok = await s.tick();
    expect(ok.failed).toBeUndefined();
    expect(ok.uploaded).toHaveLength(1);

    // The storage server goes away: ticks still resolve, quickly, and say so.
    log.write({ time: new Date().toISOString(), env: 'dev', status: 'ok', latencyMs: 2 });
    log.flush();
    const down = shipper(log, { apiEndpoint: 'http://127.0.0.1:9', warn: (l) => warnings.push(l) });
    const t0 = Date.now();
    const res = await down.tick();
    expect(res.failed).toMatch(/^log shipping: .*upload failed/);
    expect(res.failed!.split('\n')).toHaveLength(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(warnings).toHaveLength(2);
    // ...and the original shipper, still pointed at a live server, catches up.
    expect((await s.tick()).uploaded).toHaveLength(1);
    expect(readPredictionLogs(log.dir)).toHaveLength(2);
    expect(await readLogs(`gs://${BUCKET}/serving/dev`, { apiEndpoint: fake.url })).toHaveLength(2);
  });

  it('log shipper keeps one upload in flight and never holds predictions', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'));
    const url = await serveWith(log);
    const s = shipper(log);
    await predict(url, 1);
    log.flush();
    // The upload is held until the predictions are answered: they must not wait for it.
    const upload = hold();
    fake.inject({ kind: 'upload', holdUntil: upload.until });
    const pass = s.tick();
    expect(s.tick()).toBe(pass); // a tick during a pass joins it
    let passDone = false;
    void pass.finally(() => (passDone = true));
    await within(10_000, predict(url, 5), 'predictions during a held upload');
    expect(passDone).toBe(false);
    upload.release();
    expect((await pass).uploaded).toHaveLength(1);
    expect(fake.count('upload')).toBe(1);
  });

  it('log shipper stop is bounded when the storage server hangs', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'));
    const warnings: string[] = [];
    const s = shipper(log, { stopTimeoutMs: 200, warn: (l) => warnings.push(l) });
    log.write({ time: new Date().toISOString(), env: 'dev', status: 'ok', latencyMs: 1 });
    // The upload hangs until the test is done with it, far past the stop's 0.2 s.
    const upload = hold();
    fake.inject({ kind: 'upload', holdUntil: upload.until });
    const res = await within(5000, s.stop(), 'stop during a hanging upload');
    upload.release();
    expect(res.failed).toMatch(/final upload did not finish within 0.2 s/);
    expect(warnings).toEqual([res.failed]);
  });

  it('log shipper on a long-running log remembers only the files retention kept', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'), { maxBytes: 200, maxFiles: 3 });
    const s = shipper(log);
    for (let i = 0; i < 12; i++) {
      // Each entry is over 100 bytes, so every write after the first rotates.
      log.write({
        time: new Date().toISOString(),
        env: 'dev',
        status: 'ok',
        latencyMs: i,
        error: 'x'.repeat(60),
      });
      log.flush();
      expect((await s.tick()).failed).toBeUndefined();
    }
    expect(log.files()).toHaveLength(3);
    expect(listLogFiles(log.dir)).toEqual(log.files().map((f) => path.basename(f)));
    // Every file the log wrote was shipped before retention deleted it locally.
    expect(fake.names(BUCKET)).toHaveLength(12);
  });
  it('log shipper target: --ship-logs, then LOCKSTEP_LOG_URI, then a gs:// logs: in the policy', () => {
    const env = { LOCKSTEP_LOG_URI: 'gs://env-bucket/logs/' };
    const policyLogs = 'gs://policy-bucket/dev';
    expect(resolveShipTarget({ flag: 'gs://flag-bucket/x', env, policyLogs })).toEqual({
      url: 'gs://flag-bucket/x',
      where: '--ship-logs',
    });
    expect(resolveShipTarget({ env, policyLogs })).toEqual({
      url: 'gs://env-bucket/logs',
      where: 'LOCKSTEP_LOG_URI',
    });
    expect(resolveShipTarget({ env: {}, policyLogs, policyFile: 'promotion/dev.yaml' })).toEqual({
      url: 'gs://policy-bucket/dev',
      where: 'promotion/dev.yaml: logs',
    });
    expect(resolveShipTarget({ env: {}, policyLogs: 'shared/logs' })).toBeUndefined();
    expect(resolveShipTarget({ env: {} })).toBeUndefined();
    expect(() => resolveShipTarget({ flag: './logs', env: {} })).toThrow(
      /^--ship-logs: not a gs:\/\/ URL "\.\/logs"\. Write it as gs:\/\/bucket\/prefix/,
    );
    expect(() => resolveShipTarget({ env: { LOCKSTEP_LOG_URI: 'gs://Bad_Bucket!/x' } })).toThrow(
      /^LOCKSTEP_LOG_URI: invalid bucket name/,
    );
  });

  it('log shipper instance names a Vertex replica by deployed model and host, else host, pid and start', () => {
    const host = sanitizeInstance(os.hostname());
    expect(shipInstanceId({ AIP_DEPLOYED_MODEL_ID: '1234/5 x' })).toBe(`1234-5-x-${host}`);
    expect(shipInstanceId({}, new Date('2026-01-02T03:04:05.678Z'))).toBe(
      `${host}-${process.pid}-20260102T030405Z`,
    );
    expect(sanitizeInstance('../..')).toBe('server');
  });
});

describe('lockstep serve log shipping', () => {
  it('serve --ship-logs rejects a URL that is not gs:// in one line', async () => {
    const o = memoryOutput();
    const code = await main(['-C', tmp, 'serve', '--ship-logs', '/var/logs'], o);
    expect(code).not.toBe(0);
    expect(o.stderr.join('\n')).toMatch(/^[^\n]*--ship-logs: not a gs:\/\/ URL "\/var\/logs"[^\n]*$/);
  });

  /** Starts `lockstep serve` in a repo whose dev policy has `logs: gs://logs-bucket/dev`. */
  async function spawnServe(args: string[], existing?: Awaited<ReturnType<typeof createTmpRepo>>) {
    const t =
      existing ??
      (await createTmpRepo({
        'promotion/dev.yaml': `branch: dev\nendpoint: { kind: local }\nlogs: gs://${BUCKET}/dev\n`,
      }));
    const child = spawn(process.execPath, [BIN, 'serve', '--env', 'dev', ...args], {
      cwd: t.root,
      env: { ...process.env, STORAGE_EMULATOR_HOST: fake.url, LOCKSTEP_LOG_URI: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const io = { stdout: '', stderr: '' };
    child.stdout!.on('data', (d) => (io.stdout += d));
    child.stderr!.on('data', (d) => (io.stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await until(
      () => (/ on http:\/\/\S+ /.test(io.stdout) && /shipping/.test(io.stderr)) || child.exitCode !== null,
      'serve to start',
    );
    const base = / on (http:\/\/\S+) /.exec(io.stdout)?.[1];
    const post = () =>
      fetch(`${base}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [] }),
      });
    const stop = async () => {
      child.kill('SIGTERM');
      return exited;
    };
    const cleanup = async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await t.cleanup();
    };
    const kill = async () => {
      child.kill('SIGKILL');
      return exited;
    };
    return { t, io, post, stop, kill, cleanup, logDir: path.join(t.root, '.lockstep/logs/dev') };
  }

  it('serve SIGKILLed between shipments loses at most one interval of lines, and its restart ships none twice', async () => {
    const s = await spawnServe(['--ship-interval', '0.3']);
    const shipped = () => readLogs(`gs://${BUCKET}/dev`, { apiEndpoint: fake.url });
    let s2: Awaited<ReturnType<typeof spawnServe>> | undefined;
    try {
      for (let i = 0; i < 5; i++) expect((await s.post()).status).toBe(400);
      await until(async () => (await shipped()).length === 5, 'the first shipment');
      // Written after that shipment, then the process dies before the next one.
      for (let i = 0; i < 3; i++) expect((await s.post()).status).toBe(400);
      await until(() => readPredictionLogs(s.logDir).length === 8, 'the local log lines');
      await s.kill();
      const afterKill = (await shipped()).length;
      const lost = 8 - afterKill;
      expect(lost).toBeGreaterThanOrEqual(0);
      expect(lost).toBeLessThanOrEqual(3);
      s2 = await spawnServe(['--ship-interval', '0.3'], s.t);
      for (let i = 0; i < 2; i++) expect((await s2.post()).status).toBe(400);
      expect(await s2.stop()).toBe(0);
      const all = await shipped();
      const keys = all.map((e) => JSON.stringify(e));
      expect(new Set(keys).size).toBe(keys.length);
      expect(all.length).toBe(afterKill + 2);
      console.log(`serve SIGKILL: 8 lines logged before the kill, ${lost} not shipped, 0 shipped twice`);
    } finally {
      await s.cleanup();
    }
  }, 60_000);

  it("serve ships to the policy's gs:// logs: every --ship-interval", async () => {
    const s = await spawnServe(['--ship-interval', '0.2']);
    const shipped = () => readLogs(`gs://${BUCKET}/dev`, { apiEndpoint: fake.url });
    try {
      expect(s.io.stderr).toMatch(
        /shipping prediction logs to gs:\/\/logs-bucket\/dev\/\S+-\d+-\d{8}T\d{6}Z\/ every 0\.2 s/,
      );
      for (let i = 0; i < 3; i++) expect((await s.post()).status).toBe(400);
      // Uploaded by the server's timer: nothing in this test asks for it.
      await until(async () => (await shipped()).length === 3, 'the periodic upload');
      expect(await s.stop()).toBe(0);
      const entries = await shipped();
      expect(entries.every((e) => e.status === 'invalid' && e.env === 'dev')).toBe(true);
      expect(entries).toEqual(readPredictionLogs(s.logDir));
      expect(fake.names(BUCKET)).toHaveLength(1);
    } finally {
      await s.cleanup();
    }
  }, 30_000);

  it('serve --ship-logs wins over the policy and ships the tail on SIGTERM', async () => {
    const s = await spawnServe(['--ship-logs', 'gs://flag-bucket/shipped']);
    try {
      expect(s.io.stderr).toMatch(
        /shipping prediction logs to gs:\/\/flag-bucket\/shipped\/\S+\/ every 30 s/,
      );
      for (let i = 0; i < 4; i++) expect((await s.post()).status).toBe(400);
      await until(() => readPredictionLogs(s.logDir).length === 4, 'the local log lines');
      expect(fake.count('upload')).toBe(0); // the first periodic upload is 30 s away
      expect(await s.stop()).toBe(0);
      const entries = await readLogs('gs://flag-bucket/shipped', { apiEndpoint: fake.url });
      expect(entries).toHaveLength(4);
      expect(entries).toEqual(readPredictionLogs(s.logDir));
      expect(fake.names(BUCKET)).toEqual([]);
    } finally {
      await s.cleanup();
    }
  }, 30_000);
});
