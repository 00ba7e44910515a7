import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { VertexEndpoint, type VertexTarget } from '../../lib/endpoints/vertex.ts';
import type { ModelRef } from '../../lib/serving/endpoint.ts';
import { reconcileCanary } from '../../lib/canary/reconcile.ts';
import type { PredictionLogEntry } from '../../lib/serving/logs.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { openEndpoint } from '../../lib/endpoints/open.ts';
import { memoryOutput } from '../../lib/output.ts';
import { repoAt } from '../../lib/repo.ts';
import { commitFixtureModel } from '../support/fixture-model.ts';

const ENDPOINT = 'projects/p/locations/us-central1/endpoints/1';
const target: VertexTarget = {
  kind: 'vertex',
  project: 'p',
  region: 'us-central1',
  endpoint: '1',
  model: 'speech-emotion',
  machine_type: 'n1-standard-2',
  min_replicas: 1,
  max_replicas: 2,
  image: 'us-docker.pkg.dev/p/serving/lockstep:1',
};
const ref = (c: string): ModelRef => ({
  path: 'out/model',
  hash: c.repeat(64),
  size: 1234,
  nfiles: 5,
  dir: true,
});

let fake: FakeVertex;
let ep: VertexEndpoint;
const staged: string[] = [];

beforeEach(async () => {
  fake = await new FakeVertex({
    predict: (dm, instances) =>
      instances.map(() => ({ label: 'happy', scores: { happy: 0.9, sad: 0.1 }, by: dm.id })),
  }).start();
  fake.addEndpoint(ENDPOINT);
  staged.length = 0;
  ep = new VertexEndpoint(target, {
    clientOptions: fake.clientOptions(),
    stageModel: async (m) => {
      staged.push(m.hash);
      return `gs://bucket/serving/${m.hash}`;
    },
    pollInitialMs: 5,
    retryDelayMs: 5,
  });
});
afterEach(async () => {
  await ep.close();
  await fake.close();
});

describe('vertex endpoint', () => {
  it('vertex endpoint uploads versions, deploys with a traffic split, steps traffic and undeploys with the real client', async () => {
    const a = await ep.deploy(ref('a'), 100);
    expect(fake.requests).toContain('POST /v1/projects/p/locations/us-central1/models:upload');
    const model = fake.models.get('projects/p/locations/us-central1/models/speech-emotion')!;
    expect(model.map((v) => [v.versionId, v.versionAliases])).toEqual([['1', ['default', 'h-aaaaaaaaaaaa']]]);
    expect(model[0].artifactUri).toBe(`gs://bucket/serving/${'a'.repeat(64)}`);
    expect(model[0].containerSpec).toMatchObject({
      imageUri: target.image,
      predictRoute: '/predict',
      healthRoute: '/health',
    });
    expect(fake.endpoints.get(ENDPOINT)!.trafficSplit).toEqual({ [a.id]: 100 });

    // Idempotent: the same hash is neither re-uploaded nor re-deployed.
    const uploads = fake.requests.filter((r) => r.endsWith('models:upload')).length;
    expect((await ep.deploy(ref('a'), 10)).id).toBe(a.id);
    expect(fake.requests.filter((r) => r.endsWith('models:upload')).length).toBe(uploads);

    fake.faults.set('deployModel', 503); // retried
    const b = await ep.deploy(ref('b'), 10);
    expect(model.map((v) => v.versionId)).toEqual(['1', '2']);
    expect(fake.endpoints.get(ENDPOINT)!.trafficSplit).toEqual({ [a.id]: 90, [b.id]: 10 });
    expect(fake.endpoints.get(ENDPOINT)!.deployedModels.find((d) => d.id === b.id)).toMatchObject({
      model: 'projects/p/locations/us-central1/models/speech-emotion',
      modelVersionId: '2',
      dedicatedResources: {
        machineSpec: { machineType: 'n1-standard-2' },
        minReplicaCount: 1,
        maxReplicaCount: 2,
      },
    });

    await ep.setTraffic({ [a.id]: 50, [b.id]: 50 });
    expect(fake.requests.filter((r) => r.startsWith('PATCH'))).toHaveLength(1);
    await expect(ep.undeploy(a.id)).rejects.toThrow(/still has 50% of the traffic/);
    await expect(ep.setTraffic({ [a.id]: 50 })).rejects.toThrow(/sums to 50/);

    const desc = await ep.describe();
    expect(desc.deployedModels.map((d) => [d.id, d.model.hash, d.model.size, d.model.nfiles])).toEqual([
      [a.id, 'a'.repeat(64), 1234, 5],
      [b.id, 'b'.repeat(64), 1234, 5],
    ]);
    expect(desc.trafficSplit).toEqual({ [a.id]: 50, [b.id]: 50 });

    await ep.setTraffic({ [b.id]: 100 });
    await ep.undeploy(a.id);
    expect((await ep.describe()).deployedModels.map((d) => d.id)).toEqual([b.id]);

    const res = await ep.predict([{ features: [0.1, 0.2] }]);
    expect(res).toEqual({
      predictions: [{ label: 'happy', scores: { happy: 0.9, sad: 0.1 }, by: b.id }],
      deployedModelId: b.id,
      modelVersionId: '2',
    });

    expect(staged).toEqual(['a'.repeat(64), 'b'.repeat(64)]);
    expect(fake.rejected).toEqual([]);
  });

  it('vertex endpoint fake rejects request bodies that do not match the protos', async () => {
    const bad = [
      { trafficSplit: { '0': 100 }, deployedModel: { model: 'm', bogusField: 1 } },
      { trafficSplit: { '0': '100' }, deployedModel: { model: 'm' } },
      { deployedModel: { model: 'm', dedicatedResources: { minReplicaCount: 'one' } } },
    ];
    for (const body of bad) {
      const res = await fetch(`http://127.0.0.1:${fake.port}/v1/${ENDPOINT}:deployModel`, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      expect(res.status).toBe(400);
    }
    expect(fake.rejected.map((r) => r.replace(/^.*: Invalid JSON payload: /, ''))).toEqual([
      'DeployModelRequest.deployedModel.bogusField: unknown field of google.cloud.aiplatform.v1.DeployedModel',
      'DeployModelRequest.trafficSplit[0]: expected an int32',
      'DeployModelRequest.deployedModel.dedicatedResources.minReplicaCount: expected an int32',
    ]);
  });

  it('vertex endpoint gives up on an operation that never finishes', async () => {
    const slow = await new FakeVertex({ pollsUntilDone: 1_000_000 }).start();
    slow.addEndpoint(ENDPOINT);
    const e = new VertexEndpoint(target, {
      clientOptions: slow.clientOptions(),
      stageModel: async () => 'gs://b/m',
      pollInitialMs: 5,
      operationTimeoutMs: 300,
    });
    await expect(e.deploy(ref('c'), 100)).rejects.toThrow(
      /uploadModel.*(did not finish within|timed out|Total timeout)/i,
    );
    await e.close();
    await slow.close();
  });

  it('vertex endpoint keeps the canary status in endpoint labels across reconcile runs', async () => {
    const logs: PredictionLogEntry[] = [];
    const opts = {
      endpoint: ep,
      steps: [10, 100],
      analysis: {
        max_error_rate: 0.01,
        max_p99_ms: 100,
        max_divergence: 0.2,
        min_requests: 5,
        min_effect: { class_share: 0.9, error_rate: 0.7, latency_auc: 1 },
      },
      readLogs: (since: Date) => logs.filter((l) => Date.parse(l.time) >= since.getTime()),
    };
    expect((await reconcileCanary({ ...opts, desired: ref('a') })).action).toBe('deploy');
    const start = await reconcileCanary({ ...opts, desired: ref('b') });
    expect(start.action).toBe('start');
    const labels = fake.endpoints.get(ENDPOINT)!.labels;
    expect(labels).toMatchObject({
      'lockstep-canary-phase': 'progressing',
      'lockstep-canary-step': '0',
      'lockstep-canary-hash-a': 'b'.repeat(32),
    });
    const split = fake.endpoints.get(ENDPOINT)!.trafficSplit;
    expect(Object.values(split).sort((x, y) => x - y)).toEqual([10, 90]);

    const hold = await reconcileCanary({ ...opts, desired: ref('b') });
    expect(hold).toMatchObject({ action: 'hold', changed: false });

    const [stableId, canaryId] = Object.keys(split).sort((x, y) => split[y] - split[x]);
    const time = new Date(Date.now() + 1000).toISOString();
    for (let i = 0; i < 20; i++) {
      logs.push({
        time,
        env: 'prod',
        deployedModelId: i < 6 ? canaryId : stableId,
        status: 'ok',
        label: 'happy',
        latencyMs: 3,
      });
    }
    const done = await reconcileCanary({ ...opts, desired: ref('b') });
    expect(done.action).toBe('complete');
    const after = fake.endpoints.get(ENDPOINT)!;
    expect(after.trafficSplit).toEqual({ [canaryId]: 100 });
    expect(after.deployedModels.map((d) => d.id)).toEqual([canaryId]);
    expect(after.labels['lockstep-canary-phase']).toBe('completed');
    expect((await reconcileCanary({ ...opts, desired: ref('b') })).changed).toBe(false);
    expect(fake.rejected).toEqual([]);
  });

  it('vertex endpoint passes the policy logs: to new model versions as LOCKSTEP_LOG_URI', async () => {
    const out = memoryOutput();
    const shipping = new VertexEndpoint(target, {
      clientOptions: fake.clientOptions(),
      stageModel: async (m) => `gs://bucket/serving/${m.hash}`,
      logUri: 'gs://logs-bucket/prod',
      pollInitialMs: 5,
      out,
    });
    try {
      await shipping.deploy(ref('a'), 100);
      const model = fake.models.get('projects/p/locations/us-central1/models/speech-emotion')!;
      expect(model[0].containerSpec).toEqual({
        imageUri: target.image,
        predictRoute: '/predict',
        healthRoute: '/health',
        ports: [{ containerPort: 8080 }],
        env: [{ name: 'LOCKSTEP_LOG_URI', value: 'gs://logs-bucket/prod' }],
      });
      expect(fake.rejected).toEqual([]);
      expect(out.stderr).toEqual([]);

      // Another endpoint reusing that version without logs: is told where its containers ship.
      fake.addEndpoint('projects/p/locations/us-central1/endpoints/2');
      const other = new VertexEndpoint(
        { ...target, endpoint: '2' },
        { clientOptions: fake.clientOptions(), pollInitialMs: 5, out },
      );
      await other.deploy(ref('a'), 100);
      await other.close();
      expect(model).toHaveLength(1);
      expect(out.stderr).toHaveLength(1);
      expect(out.stderr[0]).toMatch(
        /^vertex: model version h-aaaaaaaaaaaa of .* was uploaded with LOCKSTEP_LOG_URI=gs:\/\/logs-bucket\/prod, .*Give this environment its own endpoint\.model/,
      );
    } finally {
      await shipping.close();
    }
  });

  it("vertex deploy through openEndpoint carries the env policy's gs:// logs: and serving.on_error_anomaly to the container", async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-vertex-logs-'));
    const gcs = await FakeGcs.start();
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = gcs.url;
    const policy = (logs: string) =>
      [
        'branch: prod',
        `endpoint: { kind: vertex, project: p, region: us-central1, endpoint: "1", model: speech-emotion, image: "us-docker.pkg.dev/p/serving/lockstep@sha256:${'d'.repeat(64)}" }`,
        'remote: gs://models-bucket/lockstep',
        `logs: ${logs}`,
        'serving: { on_error_anomaly: flag }',
        '',
      ].join('\n');
    try {
      const repo = repoAt(tmp);
      const model = await commitFixtureModel(repo);
      fs.mkdirSync(path.join(tmp, 'promotion'));
      fs.writeFileSync(path.join(tmp, 'promotion/prod.yaml'), policy('gs://logs-bucket/prod/'));
      const { endpoint } = await openEndpoint(repo, 'prod', { vertexClientOptions: fake.clientOptions() });
      try {
        await endpoint.deploy(model, 100);
      } finally {
        await (endpoint as VertexEndpoint).close();
      }
      const versions = fake.models.get('projects/p/locations/us-central1/models/speech-emotion')!;
      expect(versions[0].containerSpec!.env).toEqual([
        { name: 'LOCKSTEP_LOG_URI', value: 'gs://logs-bucket/prod' },
        // The policy's "predict anyway, flag it" reaches the serving container.
        { name: 'LOCKSTEP_ON_ERROR_ANOMALY', value: 'flag' },
      ]);
      expect(versions[0].artifactUri).toBe(`gs://models-bucket/lockstep/serving/${model.hash}`);
      expect(fake.rejected).toEqual([]);

      fs.writeFileSync(path.join(tmp, 'promotion/prod.yaml'), policy('gs://Bad_Bucket!/x'));
      await expect(openEndpoint(repo, 'prod', { vertexClientOptions: fake.clientOptions() })).rejects.toThrow(
        /^promotion\/prod\.yaml: logs: invalid bucket name "Bad_Bucket!"\. /,
      );
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
      await gcs.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
