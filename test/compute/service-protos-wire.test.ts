/**
 * The JobService client on its cut protos (lib/compute/service-protos.ts) against the same
 * client module loaded with the package's whole bundle: the same JSON from a local server must
 * decode to the same objects, and the same calls must send the same bodies. A type JobService
 * reaches only at run time (a google.protobuf.Any payload, a Struct, an enum of a nested
 * message) that the cut lost shows up here as a difference or a decode error.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { v1 } from '@google-cloud/aiplatform';
import { isRetryable, jobServiceClient, type JobServiceClient } from '../../lib/compute/jobs-client.ts';

const require = createRequire(import.meta.url);
const CLIENT = require.resolve('@google-cloud/aiplatform/build/src/v1/job_service_client.js');

let reply: { status: number; json: unknown } = { status: 200, json: {} };
const received: { method: string; url: string; body: string }[] = [];
let server: http.Server;
let cut: JobServiceClient;
let whole: JobServiceClient;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, body });
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.json));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const saved = process.env.LOCKSTEP_VERTEX_ENDPOINT;
  process.env.LOCKSTEP_VERTEX_ENDPOINT = `http://127.0.0.1:${port}`;
  try {
    cut = jobServiceClient('us-central1');
  } finally {
    if (saved === undefined) delete process.env.LOCKSTEP_VERTEX_ENDPOINT;
    else process.env.LOCKSTEP_VERTEX_ENDPOINT = saved;
  }
  // The same client module loaded afresh: it requires the whole bundle.
  const kept = require.cache[CLIENT];
  delete require.cache[CLIENT];
  try {
    const { JobServiceClient } = require(CLIENT) as { JobServiceClient: typeof v1.JobServiceClient };
    whole = new JobServiceClient({
      apiEndpoint: '127.0.0.1',
      port,
      protocol: 'http',
      fallback: true,
      authClient: (cut as unknown as { auth: unknown }).auth,
    } as ConstructorParameters<typeof v1.JobServiceClient>[0]);
  } finally {
    require.cache[CLIENT] = kept;
  }
  const protos = (c: JobServiceClient) =>
    (c as unknown as { _protos: { lookup(n: string): unknown } })._protos;
  // The two really hold different protos.
  expect(protos(whole).lookup('google.cloud.aiplatform.v1.EndpointService')).not.toBeNull();
  expect(protos(cut).lookup('google.cloud.aiplatform.v1.EndpointService')).toBeNull();
});
afterAll(async () => {
  await Promise.all([cut?.close(), whole?.close()]);
  await new Promise((r) => server.close(r));
});

type Settled = { ok: unknown } | { err: { message: string; code: unknown } };

async function settle(p: Promise<unknown>): Promise<Settled> {
  try {
    return { ok: JSON.parse(JSON.stringify(await p)) as unknown };
  } catch (e) {
    const err = e as Error & { code?: unknown };
    if (reply.status === 200) throw err; // a decode failure, not the server's error
    expect(isRetryable(err)).toBe(reply.status === 429 || reply.status === 503);
    return { err: { message: err.message, code: err.code } };
  }
}

/** The call on both clients: what each returned, and the request each sent. */
async function both(call: (c: JobServiceClient) => Promise<unknown>): Promise<Settled> {
  received.length = 0;
  const a = await settle(call(cut));
  const b = await settle(call(whole));
  expect(a).toEqual(b);
  expect(received).toHaveLength(2);
  expect(received[0]).toEqual(received[1]);
  return a;
}

const PARENT = 'projects/p/locations/us-central1';
const TIMES = {
  createTime: '2026-01-02T03:04:05.123456Z',
  startTime: '2026-01-02T03:05:05Z',
  endTime: '2026-01-02T03:06:05.5Z',
  updateTime: '2026-01-02T03:06:06Z',
};
const A_MODEL = {
  '@type': 'type.googleapis.com/google.cloud.aiplatform.v1.Model',
  displayName: 'packed',
  labels: { a: 'b' },
};
const ERROR_INFO = {
  '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
  reason: 'REPLICA_FAILED',
  domain: 'aiplatform.googleapis.com',
  metadata: { replica: 'workerpool0-1' },
};
const RETRY_INFO = { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '2.500s' };

const CUSTOM_JOB = {
  name: `${PARENT}/customJobs/123`,
  displayName: 'lockstep-featurize-abc',
  jobSpec: {
    workerPoolSpecs: [
      {
        containerSpec: {
          imageUri: 'us-docker.pkg.dev/p/r/lockstep@sha256:' + 'a'.repeat(64),
          command: ['node', 'bin/lockstep.mjs'],
          args: ['worker', '--stage', 'featurize'],
          env: [{ name: 'LOCKSTEP_REMOTE', value: 'gs://b/cache' }],
        },
        machineSpec: {
          machineType: 'n1-standard-8',
          acceleratorType: 'NVIDIA_TESLA_T4',
          acceleratorCount: 1,
        },
        replicaCount: '3',
        diskSpec: { bootDiskType: 'pd-ssd', bootDiskSizeGb: 100 },
      },
    ],
    scheduling: { timeout: '3600s', restartJobOnWorkerRestart: false },
    serviceAccount: 'sa@p.iam.gserviceaccount.com',
    baseOutputDirectory: { outputUriPrefix: 'gs://b/jobs/123' },
    enableWebAccess: true,
  },
  state: 'JOB_STATE_FAILED',
  ...TIMES,
  error: { code: 3, message: 'replica workerpool0-1 exited 1', details: [A_MODEL] },
  labels: { 'lockstep-stage': 'featurize', 'lockstep-key': 'abc' },
  webAccessUris: { 'workerpool0-0': 'https://x.notebooks.googleusercontent.com' },
  encryptionSpec: { kmsKeyName: 'projects/p/locations/l/keyRings/k/cryptoKeys/c' },
};

const BATCH_JOB = {
  name: `${PARENT}/batchPredictionJobs/9`,
  displayName: 'lockstep-batch-abc',
  model: `${PARENT}/models/m@2`,
  modelVersionId: '2',
  inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: ['gs://b/in.jsonl'] } },
  instanceConfig: { keyField: 'file', instanceType: 'object', includedFields: ['a'] },
  modelParameters: { threshold: 0.5, classes: ['a', 'b'], nested: { on: true, none: null } },
  outputConfig: { predictionsFormat: 'jsonl', gcsDestination: { outputUriPrefix: 'gs://b/out' } },
  dedicatedResources: {
    machineSpec: { machineType: 'n1-standard-4' },
    startingReplicaCount: 1,
    maxReplicaCount: 1,
  },
  manualBatchTuningParameters: { batchSize: 16 },
  outputInfo: { gcsOutputDirectory: 'gs://b/out/prediction-x' },
  state: 'JOB_STATE_PARTIALLY_SUCCEEDED',
  error: { code: 13, message: 'some batches failed', details: [A_MODEL] },
  partialFailures: [{ code: 3, message: 'bad instance', details: [A_MODEL] }],
  resourcesConsumed: { replicaHours: 0.25 },
  completionStats: {
    successfulCount: '10',
    failedCount: '2',
    incompleteCount: '0',
    successfulForecastPointCount: '0',
  },
  ...TIMES,
  labels: { 'lockstep-key': 'abc' },
  explanationSpec: {
    parameters: { sampledShapleyAttribution: { pathCount: 10 } },
    metadata: { inputs: { x: { inputTensorName: 'x', encoding: 'BAG_OF_FEATURES' } } },
  },
  unmanagedContainerModel: {
    artifactUri: 'gs://b/model',
    predictSchemata: { instanceSchemaUri: 'gs://b/i.yaml' },
    containerSpec: { imageUri: 'img', ports: [{ containerPort: 8080 }], predictRoute: '/predict' },
  },
  disableContainerLogging: true,
};

describe('the JobService client on its cut protos', () => {
  it('decodes a failed CustomJob, Any details of any type of the package included, as the whole bundle does', async () => {
    reply = { status: 200, json: CUSTOM_JOB };
    const got = (await both((c) => c.getCustomJob({ name: CUSTOM_JOB.name }))) as {
      ok: [{ error: { details: { type_url: string }[] }; jobSpec: { workerPoolSpecs: unknown[] } }];
    };
    expect(got.ok[0].jobSpec.workerPoolSpecs).toHaveLength(1);
    expect(got.ok[0].error.details.map((d) => d.type_url)).toEqual([A_MODEL['@type']]);
    reply = {
      status: 200,
      json: { customJobs: [CUSTOM_JOB, { ...CUSTOM_JOB, name: `${PARENT}/customJobs/124` }] },
    };
    await both((c) => c.listCustomJobs({ parent: PARENT, filter: 'labels.lockstep-key="abc"' }));
    reply = { status: 200, json: {} };
    await both((c) => c.cancelCustomJob({ name: CUSTOM_JOB.name }));
  });

  it('decodes google.rpc error details (ErrorInfo, RetryInfo) in the error of a failed job', async () => {
    // The package's bundle has google.rpc.Status alone: with it, this response did not decode.
    reply = {
      status: 200,
      json: { ...CUSTOM_JOB, error: { ...CUSTOM_JOB.error, details: [ERROR_INFO, RETRY_INFO] } },
    };
    const [job] = await cut.getCustomJob({ name: CUSTOM_JOB.name });
    expect(job.error?.message).toBe('replica workerpool0-1 exited 1');
    expect(job.error?.details?.map((d) => d.type_url)).toEqual([ERROR_INFO['@type'], RETRY_INFO['@type']]);
    const root = (
      cut as unknown as { _protos: { lookupType(n: string): { decode(b: Uint8Array): unknown } } }
    )._protos;
    const info = root.lookupType('google.rpc.ErrorInfo').decode(job.error!.details![0]!.value as Uint8Array);
    expect(info).toMatchObject({ reason: 'REPLICA_FAILED', metadata: { replica: 'workerpool0-1' } });
  });

  it('sends the same CustomJob and BatchPredictionJob bodies', async () => {
    const {
      name: _n,
      state: _s,
      error: _e,
      webAccessUris: _w,
      createTime: _c,
      startTime: _st,
      endTime: _et,
      updateTime: _u,
      ...customJob
    } = CUSTOM_JOB;
    const spec = {
      ...customJob.jobSpec,
      scheduling: { timeout: { seconds: 3600 }, restartJobOnWorkerRestart: false },
    };
    reply = { status: 200, json: CUSTOM_JOB };
    await both((c) =>
      c.createCustomJob({ parent: PARENT, customJob: { ...customJob, jobSpec: spec } as never }),
    );
    expect(JSON.parse(received[0]!.body)).toMatchObject({
      jobSpec: { enableWebAccess: true, scheduling: { timeout: '3600s' } },
    });
    reply = { status: 200, json: BATCH_JOB };
    await both((c) =>
      c.createBatchPredictionJob({
        parent: PARENT,
        batchPredictionJob: {
          displayName: BATCH_JOB.displayName,
          model: BATCH_JOB.model,
          labels: BATCH_JOB.labels,
          inputConfig: BATCH_JOB.inputConfig,
          instanceConfig: BATCH_JOB.instanceConfig,
          modelParameters: { structValue: { fields: { threshold: { numberValue: 0.5 } } } },
          outputConfig: BATCH_JOB.outputConfig,
          dedicatedResources: BATCH_JOB.dedicatedResources,
          manualBatchTuningParameters: BATCH_JOB.manualBatchTuningParameters,
        },
      }),
    );
    expect(JSON.parse(received[0]!.body)).toMatchObject({
      modelParameters: { threshold: 0.5 },
      instanceConfig: { keyField: 'file' },
    });
  });

  it('decodes a BatchPredictionJob (Struct parameters, partial failures, explanation spec) as the whole bundle does', async () => {
    reply = { status: 200, json: BATCH_JOB };
    const got = (await both((c) => c.getBatchPredictionJob({ name: BATCH_JOB.name }))) as {
      ok: [{ modelParameters: unknown; completionStats: unknown }];
    };
    expect(got.ok[0].modelParameters).not.toBeNull();
    reply = { status: 200, json: { batchPredictionJobs: [BATCH_JOB] } };
    await both((c) => c.listBatchPredictionJobs({ parent: PARENT }));
    reply = { status: 200, json: {} };
    await both((c) => c.cancelBatchPredictionJob({ name: BATCH_JOB.name }));
  });

  it('surfaces 429 and 503 bodies with details as the same retryable errors', async () => {
    for (const [status, code] of [
      [429, 'RESOURCE_EXHAUSTED'],
      [503, 'UNAVAILABLE'],
      [400, 'INVALID_ARGUMENT'],
    ] as const) {
      reply = {
        status,
        json: { error: { code: status, status: code, message: 'no', details: [ERROR_INFO, RETRY_INFO] } },
      };
      await both((c) => c.getCustomJob({ name: CUSTOM_JOB.name }));
    }
  });
});
