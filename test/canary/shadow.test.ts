/**
 * The shadow step: the candidate is deployed with no traffic, the local server answers every
 * request with the stable model and mirrors it to the candidate after answering; the candidate's
 * predictions are logged as shadow ones and judged like a weighted step's.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { startServer } from '../../lib/serving/server.ts';
import {
  PredictionLog,
  predictionLogDir,
  readPredictionLogs,
  type PredictionLogEntry,
} from '../../lib/serving/logs.ts';
import { LocalEndpoint } from '../../lib/endpoints/local.ts';
import { LocalEndpointSource } from '../../lib/serving/local-source.ts';
import { ModelCache } from '../../lib/serving/model-store.ts';
import { ShadowTraffic } from '../../lib/serving/shadow.ts';
import { reconcileCanary, type ReconcileResult } from '../../lib/canary/reconcile.ts';
import { computeMonitorReport } from '../../lib/monitoring/monitor.ts';
import type { CanaryStep } from '../../lib/environment/policy.ts';
import type { ModelRef } from '../../lib/serving/endpoint.ts';
import {
  commitFixtureModel,
  fixtureLoader,
  freqForClass,
  toneWav,
  type FixtureSpec,
} from '../support/fixture-model.ts';

const STEPS: CanaryStep[] = ['shadow', 50, 100];
const ANALYSIS = {
  max_error_rate: 0.05,
  max_p99_ms: 5000,
  max_divergence: 0.3,
  min_requests: 8,
  min_effect: { class_share: 0.8, error_rate: 0.6, latency_auc: 0.9 },
};
const MIX = [0, 0, 0, 0, 1, 2, 3];
const WAVS = [0, 1, 2, 3].map((k) => toneWav(freqForClass(k), 0.3).toString('base64'));

let tmp: string;
let repo: Repo;
let app: FastifyInstance;
let url: string;
let endpoint: LocalEndpoint;
let source: LocalEndpointSource;
let log: PredictionLog;
let shadow: ShadowTraffic;

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-shadow-'));
  repo = repoAt(tmp);
  endpoint = new LocalEndpoint(repo, 'prod', { loader: fixtureLoader });
  source = new LocalEndpointSource(repo, 'prod', { cache: new ModelCache(fixtureLoader) });
  log = new PredictionLog(predictionLogDir(tmp, 'prod'));
  shadow = new ShadowTraffic();
  ({ app, url } = await startServer({ source, env: 'prod', log, refreshMs: 0, shadow }));
});
afterEach(async () => {
  await app.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const readAll = () => {
  log.flush();
  return readPredictionLogs(log.dir);
};

function reconcile(desired: ModelRef): Promise<ReconcileResult> {
  return reconcileCanary({
    endpoint,
    desired,
    steps: STEPS,
    analysis: ANALYSIS,
    readLogs: (since) => {
      log.flush();
      return readPredictionLogs(log.dir, { since });
    },
  });
}

/** Sends `n` predictions; returns who answered and each answer's label. */
async function drive(n: number): Promise<{ by: Record<string, number>; labels: string[] }> {
  await source.refresh();
  const by: Record<string, number> = {};
  const labels: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(url + '/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ audio: WAVS[MIX[i % MIX.length]] }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { deployedModelId: string; predictions: { label: string }[] };
    by[body.deployedModelId] = (by[body.deployedModelId] ?? 0) + 1;
    labels.push(body.predictions[0].label);
  }
  return { by, labels };
}

/** The mirrored predictions run on the shadow worker: wait until it has done them all. */
async function shadowEntries(n: number): Promise<PredictionLogEntry[]> {
  await shadow.settled();
  const found = readAll().filter((e) => e.role === 'shadow');
  expect(found).toHaveLength(n);
  return found;
}

async function startShadow(spec: FixtureSpec): Promise<{ stable: ModelRef; candidate: ModelRef }> {
  const stable = await commitFixtureModel(repo, { tag: 'stable' });
  expect((await reconcile(stable)).action).toBe('deploy');
  const candidate = await commitFixtureModel(repo, spec);
  const start = await reconcile(candidate);
  expect(start.reason).toMatch(/step 1\/3 in shadow against stable 1/);
  // The candidate is deployed and loaded, and takes no traffic.
  expect((await endpoint.describe()).trafficSplit).toEqual({ '1': 100, '2': 0 });
  expect((await endpoint.describe()).canary).toMatchObject({ phase: 'progressing', shadow: true });
  return { stable, candidate };
}

describe('canary shadow step', () => {
  it("canary shadow step answers with stable's prediction, logs the candidate's as shadow, then advances to 50%", async () => {
    const { candidate } = await startShadow({ tag: 'good' });
    const hold = await reconcile(candidate);
    expect(hold.action).toBe('hold');
    expect(hold.reason).toMatch(
      /step 1\/3: 0 of \d+ canary requests since .*: holding in shadow; needs \d+ more/,
    );

    const { by, labels } = await drive(28);
    expect(by).toEqual({ '1': 28 });
    const shadows = await shadowEntries(28);
    const answered = readAll().filter((e) => e.role === undefined);
    expect(answered.map((e) => e.deployedModelId)).toEqual(Array(28).fill('1'));
    expect(answered.map((e) => e.label)).toEqual(labels);
    for (const [i, s] of shadows.entries()) {
      expect(s).toMatchObject({ deployedModelId: '2', status: 'ok', role: 'shadow' });
      // The stable model's answer to the same request rides along (paired evidence).
      expect(s.shadow).toMatchObject({ deployedModelId: '1', label: labels[i] });
      expect(s.latencyMs).toBeGreaterThan(0);
    }
    // Monitoring sees the served traffic only.
    const report = computeMonitorReport('prod', readAll(), { featureNames: [], histograms: {} });
    expect(report.volume.recent).toBe(28);

    const advance = await reconcile(candidate);
    expect(advance.action, advance.reason).toBe('advance');
    expect(advance.reason).toMatch(
      /^step 1\/3: error rate 0\.0%, p99 \d+ ms, agreement with stable 100% \(28\/28 paired requests\).*: advancing to 50%$/,
    );
    expect(advance.analysis!.canary.requests).toBe(28);
    const after = await endpoint.describe();
    expect(after.trafficSplit).toEqual({ '1': 50, '2': 50 });
    expect(after.canary?.shadow).toBeUndefined();
    // Out of the shadow step, the candidate answers its share and nothing is mirrored any more.
    const weighted = await drive(14);
    expect(weighted.by).toEqual({ '1': 7, '2': 7 });
    expect(readAll().filter((e) => e.role === 'shadow')).toHaveLength(28);
  });

  it.each([
    [
      'predicts the wrong classes',
      { shift: 3, tag: 'bad' },
      /agreement with stable 0% \(0\/28 paired requests\)/,
    ],
    ['throws on every request', { fail: true }, /error rate 100\.0% > 5\.0%/],
  ] as const)(
    'canary shadow step rolls back a candidate that %s before any client sees it',
    async (_name, spec, why) => {
      const { candidate } = await startShadow(spec);
      const { by } = await drive(28);
      expect(by).toEqual({ '1': 28 });
      await shadowEntries(28);
      const result = await reconcile(candidate);
      expect(result).toMatchObject({ action: 'rollback', failed: true });
      expect(result.reason).toMatch(/^step 1\/3 in shadow: /);
      expect(result.reason).toMatch(why);
      expect((await endpoint.describe()).canary).toMatchObject({ phase: 'rolled-back' });
      expect((await endpoint.describe()).canary?.shadow).toBeUndefined();
    },
  );
});
