import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { startServer } from '../../lib/serving/server.ts';
import { PredictionLog, predictionLogDir, readPredictionLogs } from '../../lib/serving/logs.ts';
import { LocalEndpoint } from '../../lib/endpoints/local.ts';
import { LocalEndpointSource } from '../../lib/serving/local-source.ts';
import { ModelCache } from '../../lib/serving/model-store.ts';
import { reconcileCanary, type ReconcileResult } from '../../lib/canary/reconcile.ts';
import { LogShipper } from '../../lib/serving/ship.ts';
import { writeLockfile } from '../../lib/lockfile.ts';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { analyzeStep, divergence, percentile } from '../../lib/canary/analysis.ts';
import type { ModelRef } from '../../lib/serving/endpoint.ts';
import {
  commitFixtureModel,
  fixtureLoader,
  freqForClass,
  toneWav,
  type FixtureSpec,
} from '../support/fixture-model.ts';

let tmp: string;
let repo: Repo;
let app: FastifyInstance;
let url: string;
let endpoint: LocalEndpoint;
let source: LocalEndpointSource;
let log: PredictionLog;

const STEPS = [25, 50, 100];
// Effects large enough that a few dozen requests give the tests their power (see test/canary/stats.test.ts).
const ANALYSIS = {
  max_error_rate: 0.05,
  max_p99_ms: 500,
  max_divergence: 0.3,
  min_requests: 8,
  min_effect: { class_share: 0.8, error_rate: 0.6, latency_auc: 0.9 },
};
// A skewed input mix (period 7, coprime with the router's periods), so a model predicting the
// wrong classes shows up as a different predicted-class distribution.
const MIX = [0, 0, 0, 0, 1, 2, 3];
const WAVS = [0, 1, 2, 3].map((k) => toneWav(freqForClass(k), 0.3).toString('base64'));

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-canary-'));
  repo = repoAt(tmp);
  endpoint = new LocalEndpoint(repo, 'staging', { loader: fixtureLoader });
  source = new LocalEndpointSource(repo, 'staging', { cache: new ModelCache(fixtureLoader) });
  log = new PredictionLog(predictionLogDir(tmp, 'staging'));
  ({ app, url } = await startServer({ source, env: 'staging', log, refreshMs: 0 }));
});
afterEach(async () => {
  await app.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

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

/** Sends `n` real HTTP predictions (after the server picked up the latest endpoint state). */
async function drive(n: number): Promise<Record<string, number>> {
  // The source re-reads the state file when its mtime, size or inode changed. An atomic rewrite
  // of the same size can reuse the freed inode, and file times tick with the kernel's coarse
  // clock (up to 10 ms at HZ=100): this wait keeps each reconcile's write a tick after the last.
  await new Promise((r) => setTimeout(r, 20));
  await source.refresh();
  const byModel: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await fetch(url + '/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ audio: WAVS[MIX[i % MIX.length]] }] }),
    });
    const body = (await res.json()) as { deployedModelId?: string };
    const key = res.status === 200 ? body.deployedModelId! : `status ${res.status}`;
    byModel[key] = (byModel[key] ?? 0) + 1;
  }
  return byModel;
}

function stateBytes(): string {
  return fs.readFileSync(endpoint.file, 'utf8');
}

/** Runs reconcile again and checks it neither changes nor writes anything. */
async function expectIdempotent(desired: ModelRef): Promise<ReconcileResult> {
  const before = stateBytes();
  const mtime = fs.statSync(endpoint.file).mtimeMs;
  const again = await reconcile(desired);
  expect(again.changed).toBe(false);
  expect(again.plan).toEqual([]);
  expect(stateBytes()).toBe(before);
  expect(fs.statSync(endpoint.file).mtimeMs).toBe(mtime);
  return again;
}

async function deployStable(): Promise<ModelRef> {
  const stable = await commitFixtureModel(repo, { tag: 'stable' });
  const first = await reconcile(stable);
  expect(first, first.reason).toMatchObject({ action: 'deploy', changed: true, failed: false });
  expect((await endpoint.describe()).trafficSplit).toEqual({ '1': 100 });
  await expectIdempotent(stable);
  return stable;
}

describe('canary reconcile', () => {
  it('canary reconcile takes a good candidate through every step to 100% and undeploys the old model', async () => {
    const stable = await deployStable();
    const good = await commitFixtureModel(repo, { tag: 'good' });

    const start = await reconcile(good);
    expect(start.action).toBe('start');
    expect(start.reason).toMatch(/step 1\/3 at 25% against stable 1/);
    expect((await endpoint.describe()).trafficSplit).toEqual({ '1': 75, '2': 25 });
    expect(await expectIdempotent(good)).toMatchObject({ action: 'hold' });

    expect(await drive(3)).toEqual({ '1': 2, '2': 1 });
    const hold = await expectIdempotent(good);
    expect(hold.reason).toMatch(
      /step 1\/3: 1 of 8 canary requests since .*: holding at 25%; needs 7 more \(min_requests 8\)/,
    );

    expect(await drive(56)).toEqual({ '1': 42, '2': 14 });
    const advance = await reconcile(good);
    expect(advance.action).toBe('advance');
    expect(advance.reason).toMatch(
      /^step 1\/3: error rate 0\.0%, p99 \d+ ms, agreement with stable 100% \(15\/15 paired requests\) vs 70% required \(stable-vs-stable 100% on \d+ repeated inputs\), largest class score shift \w+ [+-]0\.00, class distribution chi-square p = 1\.000, error rate two-proportion z p = 1\.000, latency Mann-Whitney U p = [\d.e-]+: advancing to 50%$/,
    );
    expect(advance.analysis!.canary.requests).toBe(15);
    expect((await endpoint.describe()).trafficSplit).toEqual({ '1': 50, '2': 50 });
    await expectIdempotent(good);

    expect(await drive(28)).toEqual({ '1': 14, '2': 14 });
    const done = await reconcile(good);
    expect(done.action).toBe('complete');
    expect(done.reason).toMatch(
      /^step 2\/3: .*: completed all 3 canary steps; [0-9a-f]{12} serves 100%, stable 1 undeployed$/,
    );
    const after = await endpoint.describe();
    expect(after.trafficSplit).toEqual({ '2': 100 });
    expect(after.deployedModels.map((d) => d.model.hash)).toEqual([good.hash]);
    expect(after.canary).toMatchObject({ phase: 'completed', candidateHash: good.hash });
    const steady = await expectIdempotent(good);
    expect(steady.reason).toMatch(/nothing to do/);
    expect(await drive(4)).toEqual({ '2': 4 });
    expect(stable.hash).not.toBe(good.hash);
  });

  const bad: [string, FixtureSpec, RegExp][] = [
    [
      'predicts the wrong classes (random weights)',
      { shift: 3, tag: 'bad' },
      /step 1\/3 at 25%: agreement with stable 0% \(0\/14 paired requests\) is significantly below the 70% required \(one-sided exact binomial test p=4\.8e-8 < 0\.01\)/,
    ],
    ['throws on every request', { fail: true }, /error rate 100\.0% > 5\.0%/],
  ];
  it.each(bad)(
    'canary reconcile rolls back a candidate that %s and keeps the stable model',
    async (_name, spec, why) => {
      await deployStable();
      const candidate = await commitFixtureModel(repo, spec);
      expect((await reconcile(candidate)).action).toBe('start');
      const traffic = await drive(56);
      expect(traffic['1']).toBe(42);
      const result = await reconcile(candidate);
      expect(result).toMatchObject({ action: 'rollback', failed: true, changed: true });
      expect(result.reason).toMatch(why);
      expect(result.reason).toMatch(/rolling back to stable 1, canary at 0%/);
      const after = await endpoint.describe();
      expect(after.trafficSplit).toEqual({ '1': 100, '2': 0 });
      expect(after.canary).toMatchObject({ phase: 'rolled-back', candidateHash: candidate.hash });
      expect(await drive(7)).toEqual({ '1': 7 });

      const again = await expectIdempotent(candidate);
      expect(again.failed).toBe(true);
      expect(again.reason).toMatch(/was rolled back .* Pin a new model to try again/);

      // A fixed model pinned next starts a fresh canary and the rolled-back one is cleaned up.
      const fixed = await commitFixtureModel(repo, { tag: 'fixed' });
      const restart = await reconcile(fixed);
      expect(restart.action).toBe('start');
      const now = await endpoint.describe();
      expect(now.deployedModels.map((d) => d.id)).toEqual(['1', '3']);
      expect(now.trafficSplit).toEqual({ '1': 75, '3': 25 });
    },
  );

  it('canary reconcile returns to the stable model at once when it is pinned again mid-canary', async () => {
    const stable = await deployStable();
    const candidate = await commitFixtureModel(repo, { tag: 'reverted' });
    expect((await reconcile(candidate)).action).toBe('start');
    const revert = await reconcile(stable);
    expect(revert.reason).toMatch(/abandoned: [0-9a-f]{12} is pinned again and serves 100%/);
    const after = await endpoint.describe();
    expect(after.trafficSplit).toEqual({ '1': 100 });
    expect(after.deployedModels.map((d) => d.id)).toEqual(['1']);
    expect((await expectIdempotent(stable)).action).toBe('none');
  });

  it('canary reconcile --dry prints the plan and changes nothing', async () => {
    await deployStable();
    const candidate = await commitFixtureModel(repo, { tag: 'dry' });
    const before = stateBytes();
    const dry = await reconcileCanary({
      endpoint,
      desired: candidate,
      steps: STEPS,
      analysis: ANALYSIS,
      readLogs: () => [],
      dry: true,
    });
    expect(dry).toMatchObject({ action: 'start', changed: true });
    expect(dry.plan).toEqual([expect.stringMatching(/^deploy [0-9a-f]{12} at 25% \(stable 1 keeps 75%\)$/)]);
    expect(stateBytes()).toBe(before);
  });

  it('canary reconcile fails early on errors but holds on too few clean requests', () => {
    const entries = (id: string, n: number, status: 'ok' | 'error') =>
      Array.from({ length: n }, () => ({
        time: '',
        env: 'e',
        deployedModelId: id,
        status,
        label: 'happy',
        latencyMs: 1,
      }));
    expect(analyzeStep(entries('2', 3, 'ok'), '2', '1', ANALYSIS).verdict).toBe('inconclusive');
    expect(
      analyzeStep([...entries('2', 2, 'ok'), ...entries('2', 1, 'error')], '2', '1', ANALYSIS).verdict,
    ).toBe('fail');
    expect(divergence({ a: 0.5, b: 0.5 }, { a: 0.2, c: 0.8 })).toBeCloseTo(0.8);
    expect(percentile([5, 1, 3, 2, 4], 99)).toBe(5);
    expect(percentile([], 99)).toBe(0);
  });

  it('canary reconcile rolls back when the candidate cannot be deployed', async () => {
    await deployStable();
    const broken = await commitFixtureModel(repo, { tag: 'broken' });
    fs.rmSync(path.join(tmp, '.lockstep', 'models', broken.hash), { recursive: true, force: true });
    fs.mkdirSync(path.join(tmp, '.lockstep', 'models', broken.hash), { recursive: true });
    const result = await reconcile(broken);
    expect(result).toMatchObject({ action: 'rollback', failed: true });
    expect(result.reason).toMatch(/model failed to load/);
    const after = await endpoint.describe();
    expect(after.trafficSplit).toEqual({ '1': 100 });
    expect(after.canary?.phase).toBe('rolled-back');
    expect((await expectIdempotent(broken)).failed).toBe(true);
  });
});

describe('canary reconcile on shipped logs', () => {
  it("canary reconcile reads the policy's gs:// logs: (shipped by the server), from the step start on", async () => {
    const gcs = await FakeGcs.start();
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = gcs.url;
    try {
      fs.mkdirSync(path.join(tmp, 'promotion'));
      fs.writeFileSync(
        path.join(tmp, 'promotion/staging.yaml'),
        [
          'branch: staging',
          'endpoint: { kind: local }',
          'logs: gs://logs-bucket/staging',
          `canary: { steps: ${JSON.stringify(STEPS)}, analysis: ${JSON.stringify(ANALYSIS)} }`,
          '',
        ].join('\n'),
      );
      await deployStable();
      const good = await commitFixtureModel(repo, { tag: 'good' });
      expect((await reconcile(good)).action).toBe('start');
      await writeLockfile(repo, {
        schema: 1,
        data: {},
        stages: { train: { code: 'c'.repeat(64), deps: [], params: {}, outs: [good] } },
      });
      const cli = async () => {
        const o = memoryOutput();
        const code = await main(
          ['-C', tmp, 'canary', 'reconcile', '--env', 'staging', '--working-tree', '--json'],
          o,
        );
        expect(o.stderr).toEqual([]);
        return { code, result: JSON.parse(o.stdout.join('\n')) as ReconcileResult };
      };

      // Failures from before the step started are not part of it.
      const before = new Date(Date.now() - 3600_000).toISOString();
      const stale = { time: before, env: 'staging', deployedModelId: '2', status: 'error', latencyMs: 1 };
      gcs.putObject(
        'logs-bucket',
        'staging/old-server/predictions-1.jsonl',
        Buffer.from(Array(20).fill(JSON.stringify(stale)).join('\n') + '\n'),
      );

      // Traffic is in the local log, but the canary reads the shipped logs: nothing there yet.
      expect(await drive(56)).toEqual({ '1': 42, '2': 14 });
      log.flush();
      const waiting = await cli();
      expect(waiting.code).toBe(0);
      expect(waiting.result.action).toBe('hold');
      expect(waiting.result.reason).toMatch(/0 of \d+ canary requests/);

      await new LogShipper(log, 'gs://logs-bucket/staging', { instance: 'server-1', intervalMs: 0 }).stop();
      const shipped = await cli();
      expect(shipped.result.action, shipped.result.reason).toBe('advance');
      expect(shipped.result.analysis!.canary.requests).toBe(14);
      expect((await endpoint.describe()).trafficSplit).toEqual({ '1': 50, '2': 50 });
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
      await gcs.close();
    }
  });
});
