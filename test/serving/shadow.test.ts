/**
 * Shadow traffic off the answer path: the shadow step's candidate predicts on a worker thread, so
 * a candidate that hangs, is slow or throws never delays or fails an answered request, a hung
 * one is cut off and counted, a full queue skips and counts, and stopping the server does not
 * wait for a busy candidate.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { startServer } from '../../lib/serving/server.ts';
import { readAipEnvironment, storageUriSource } from '../../lib/serving/container.ts';
import { PredictionLog, readPredictionLogs, type PredictionLogEntry } from '../../lib/serving/logs.ts';
import { staticSource, type ModelSource, type Route } from '../../lib/serving/router.ts';
import { ShadowTraffic, type ShadowCounts, type ShadowOptions } from '../../lib/serving/shadow.ts';
import {
  fixtureLoader,
  freqForClass,
  toneWav,
  writeFixtureModel,
  type FixtureSpec,
} from '../support/fixture-model.ts';

/** Long enough to count as never returning within any test. */
const HANG: FixtureSpec = { delayMs: 3_600_000, tag: 'hangs' };
const WAV = toneWav(freqForClass(2), 0.3).toString('base64');

let tmp: string;
let app: FastifyInstance | undefined;
let url: string;
let log: PredictionLog;
let shadow: ShadowTraffic;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-shadow-worker-'));
  log = new PredictionLog(path.join(tmp, 'logs'));
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function route(id: string, spec: FixtureSpec): Promise<Route> {
  const dir = path.join(tmp, `model-${id}`);
  writeFixtureModel(dir, spec);
  const model = await fixtureLoader(dir);
  return {
    deployedModelId: id,
    modelVersionId: `v${id}`,
    model,
    modelDir: dir,
    loaderRef: fixtureLoader.ref,
  };
}

/** Stable model 1 answers everything; candidate 2 (spec) is mirrored every request. */
async function serve(spec: FixtureSpec, options: ShadowOptions): Promise<void> {
  const stable = await route('1', { tag: 'stable' });
  const candidate = await route('2', spec);
  const source: ModelSource = {
    ...staticSource([{ ...stable, percent: 100 }]),
    mirrorFor: (r) => (r.deployedModelId === '1' ? candidate : undefined),
  };
  shadow = new ShadowTraffic({ warn: () => undefined, ...options });
  ({ app, url } = await startServer({ source, env: 'dev', log, refreshMs: 0, shadow }));
}

/** Sends `n` requests one after another; returns each one's wall time (ms). */
async function drive(n: number, answeredBy = '1'): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url + '/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ audio: WAV }] }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { deployedModelId: string }).deployedModelId).toBe(answeredBy);
    times.push(performance.now() - t0);
  }
  return times;
}

function entries(): { answered: PredictionLogEntry[]; shadows: PredictionLogEntry[] } {
  log.flush();
  const all = readPredictionLogs(log.dir);
  return {
    answered: all.filter((e) => e.role === undefined),
    shadows: all.filter((e) => e.role === 'shadow'),
  };
}

async function healthShadow(): Promise<ShadowCounts> {
  return ((await (await fetch(url + '/health')).json()) as { shadow: ShadowCounts }).shadow;
}

describe('shadow traffic', () => {
  it('shadow traffic keeps answering while the candidate hangs: it is cut off, restarted and counted, and a full queue skips', async () => {
    // The busy-looping candidate runs on a nice-19 thread: on a loaded machine its 300 ms of CPU
    // may take many seconds of wall time, which must not make it count as starved here.
    await serve(HANG, { timeoutMs: 300, maxQueue: 2, starvedAfterMs: 600_000 });
    const times = await drive(6);
    // Answered in far less than the candidate's hang, every one of them.
    for (const t of times) expect(t).toBeLessThan(2000);
    await shadow.settled();
    const c = await healthShadow();
    expect(c.predicted).toBe(0);
    expect(c.timedOut).toBeGreaterThanOrEqual(1);
    expect(c.skipped).toBeGreaterThanOrEqual(1);
    expect(c.timedOut + c.skipped).toBe(6);
    // A fresh worker per cut-off one.
    expect(c.workersStarted).toBe(c.timedOut);
    const { answered, shadows } = entries();
    expect(answered.map((e) => [e.status, e.deployedModelId])).toEqual(Array(6).fill(['ok', '1']));
    // A time-out is the candidate's error, logged as a shadow prediction; a skip is only counted.
    expect(shadows).toHaveLength(c.timedOut);
    for (const s of shadows) {
      expect(s).toMatchObject({ deployedModelId: '2', status: 'error', role: 'shadow' });
      expect(s.error).toMatch(/shadow prediction timed out \(did not predict within 300 ms\)/);
    }
  });

  it('shadow traffic with a slow candidate answers at the stable model pace and logs the slow predictions', async () => {
    // Far above a stable answer's time under CI load (about 100 ms with the load average at 14,
    // against 400 ms here before), so an answer that waits for the candidate is what fails.
    const delay = 1200;
    await serve({ delayMs: delay, tag: 'slow' }, { timeoutMs: 10_000 });
    const times = await drive(4);
    for (const t of times) expect(t).toBeLessThan(delay);
    await shadow.settled();
    const { shadows } = entries();
    expect(shadows).toHaveLength(4);
    for (const s of shadows) {
      expect(s).toMatchObject({ deployedModelId: '2', status: 'ok', role: 'shadow' });
      expect(s.shadow).toMatchObject({ deployedModelId: '1' });
      expect(s.latencyMs).toBeGreaterThanOrEqual(delay);
    }
    expect(await healthShadow()).toMatchObject({ predicted: 4, failed: 0, timedOut: 0, skipped: 0 });
  });

  it('shadow traffic with a candidate that throws answers every request and logs the shadow errors', async () => {
    await serve({ fail: true }, {});
    await drive(3);
    await shadow.settled();
    const { answered, shadows } = entries();
    expect(answered.every((e) => e.status === 'ok')).toBe(true);
    expect(shadows.map((s) => s.status)).toEqual(['error', 'error', 'error']);
    expect(shadows[0].error).toMatch(/shadow prediction failed \(fixture model: failing on purpose\)/);
    expect(await healthShadow()).toMatchObject({ predicted: 0, failed: 3, workersStarted: 1 });
  });

  it('shadow traffic does not hold up server shutdown while the candidate is busy', async () => {
    await serve(HANG, { timeoutMs: 600_000 });
    const started = once(shadow, 'started');
    await drive(1);
    await started;
    const t0 = performance.now();
    await app!.close();
    app = undefined;
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(shadow.counts()).toMatchObject({ skipped: 1, queued: 0, timedOut: 0 });
  });

  it('shadow traffic in the serving container mirrors to the model directory LOCKSTEP_SHADOW_STORAGE_URI names', async () => {
    const stableDir = path.join(tmp, 'stable');
    const candidateDir = path.join(tmp, 'candidate');
    writeFixtureModel(stableDir, { tag: 'stable' });
    writeFixtureModel(candidateDir, { tag: 'candidate', shift: 1 });
    const aip = readAipEnvironment({ AIP_STORAGE_URI: stableDir, LOCKSTEP_SHADOW_STORAGE_URI: candidateDir });
    expect(aip.shadowStorageUri).toBe(candidateDir);
    const source = await storageUriSource(aip.storageUri!, {
      loader: fixtureLoader,
      deployedModelId: '5',
      shadowStorageUri: aip.shadowStorageUri,
    });
    shadow = new ShadowTraffic({ warn: () => undefined });
    ({ app, url } = await startServer({ source, env: 'vertex-1', log, refreshMs: 0, shadow }));
    await drive(3, '5');
    await shadow.settled();
    const { answered, shadows } = entries();
    expect(answered.map((e) => e.deployedModelId)).toEqual(['5', '5', '5']);
    expect(shadows.map((e) => [e.deployedModelId, e.status])).toEqual(Array(3).fill(['5-shadow', 'ok']));
    // The candidate's own answer, with the served one beside it.
    expect(shadows[0].label).not.toBe(shadows[0].shadow?.label);
    expect(shadows[0].shadow).toMatchObject({ deployedModelId: '5', label: answered[0].label });
  });
});

describe('shadow traffic on a starved CPU and with a candidate that keeps hanging', () => {
  it('shadow traffic does not count a thread that got no CPU as a timed-out candidate: the 2 s budget is CPU time', async () => {
    // Blocked without using CPU for 3x the budget: what a nice-19 thread on a loaded machine sees.
    await serve({ sleepMs: 600 }, { timeoutMs: 200 });
    await drive(2);
    await shadow.settled();
    expect(await healthShadow()).toMatchObject({ predicted: 2, failed: 0, timedOut: 0, workersStarted: 1 });
    expect(entries().shadows.map((s) => s.status)).toEqual(['ok', 'ok']);
  });

  it('shadow traffic gives up on a thread starved beyond the wall-clock cap without logging it as the candidate error', async () => {
    await serve({ sleepMs: Infinity }, { timeoutMs: 100, starvedAfterMs: 400, backoffMs: 60_000 });
    const cut = once(shadow, 'cutoff');
    await drive(1);
    await cut;
    await shadow.settled();
    expect(await healthShadow()).toMatchObject({ predicted: 0, failed: 0, timedOut: 0, starved: 1 });
    expect(entries().shadows).toEqual([]);
  });

  it('shadow traffic backs off after a cut-off worker: a candidate that keeps hanging does not restart the worker per instance', async () => {
    await serve(HANG, { timeoutMs: 100, backoffMs: 60_000, starvedAfterMs: 600_000 });
    const cut = once(shadow, 'cutoff');
    await drive(5);
    await cut;
    // While backing off, new instances are skipped and counted, and no worker starts.
    await drive(5);
    await shadow.settled();
    const c = await healthShadow();
    expect(c).toMatchObject({ timedOut: 1, workersStarted: 1, skipped: 9, queued: 0 });
    expect(entries().shadows).toHaveLength(1);
  });

  it('shadow traffic starts a fresh worker once the back-off is over', async () => {
    await serve(HANG, { timeoutMs: 100, backoffMs: 50, starvedAfterMs: 600_000 });
    await drive(1);
    await once(shadow, 'cutoff');
    await once(shadow, 'resumed');
    await drive(1);
    await once(shadow, 'cutoff');
    const c = await healthShadow();
    expect(c).toMatchObject({ timedOut: 2, workersStarted: 2 });
  });

  it('shadow traffic refuses a features instance whose length the candidate does not take, as the answer path does', async () => {
    await serve({ featureDim: 3 }, {});
    const res = await fetch(url + '/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ features: [0.03, 0.1] }] }),
    });
    expect(res.status).toBe(200);
    await shadow.settled();
    const { shadows } = entries();
    expect(shadows.map((s) => s.status)).toEqual(['error']);
    expect(shadows[0].error).toMatch(/wrong shape "2"\. The candidate expects 3 raw summary features/);
  });

  it('shadow traffic follows a candidate that changes mid-step on one worker thread, each prediction logged under its own candidate', async () => {
    const stable = await route('1', { tag: 'stable' });
    const candidates = await Promise.all(
      [2, 3, 4, 5, 6, 7, 8, 9].map((k) => route(String(k), { tag: `c${k}` })),
    );
    shadow = new ShadowTraffic({ warn: () => undefined });
    try {
      for (let round = 0; round < 3; round++) {
        for (const candidate of candidates) {
          shadow.mirror({
            env: 'dev',
            log,
            candidate,
            stable,
            instances: [{ kind: 'features', raw: Float32Array.of(0.03, 0.1) }],
            answers: [{ label: 'fear', scores: {} }],
            prepMs: 0,
          });
          await shadow.settled();
        }
      }
      expect(shadow.counts()).toMatchObject({ predicted: 24, failed: 0, workersStarted: 1, queued: 0 });
      const ids = entries().shadows.map((e) => [e.deployedModelId, e.modelVersionId]);
      expect(ids).toEqual(
        Array(3)
          .fill(candidates.map((c) => [c.deployedModelId, c.modelVersionId]))
          .flat(),
      );
    } finally {
      await shadow.close();
    }
  });
});
