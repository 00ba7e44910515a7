import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { configureVertexEndpoint } from '../../lib/endpoints/configure.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import {
  fakeMetadataState,
  metadataRoutes,
  type FakeMetadataState,
} from '../support/fake-vertex-metadata.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const ENDPOINT = 'projects/p/locations/us-central1/endpoints/1';
const STATS = JSON.stringify({
  f0: { edges: [0, 0.5, 1], counts: [0, 2, 2, 0] },
  f1: { edges: [0, 0.5, 1], counts: [0, 3, 1, 0] },
});
const INDEX = JSON.stringify({
  featureNames: ['f0', 'f1'],
  labels: ['a', 'b'],
  splits: { train: { labels: [0, 1, 0, 1] } },
});

let vertex: FakeVertex;
let gcs: FakeGcs;
let state: FakeMetadataState;
let t: TmpRepo;

function policy(extra: string[]): string {
  return [
    'branch: prod',
    'remote: gs://bkt/store',
    'endpoint:',
    '  kind: vertex',
    '  project: p',
    '  endpoint: "1"',
    '  model: m',
    '  image: img',
    ...extra,
  ].join('\n');
}

beforeAll(async () => {
  vertex = await new FakeVertex().start();
  gcs = await FakeGcs.start();
});
afterAll(async () => {
  await vertex.close();
  await gcs.close();
});
beforeEach(async () => {
  state = fakeMetadataState();
  vertex.routes.length = 0;
  vertex.use(metadataRoutes(state));
  vertex.endpoints.clear();
  vertex.requests.length = 0;
  const model = 'projects/p/locations/us-central1/models/m';
  vertex.models.set(model, [{ name: model, versionId: '1', versionAliases: ['default'], displayName: 'm' }]);
  vertex.addEndpoint(ENDPOINT).deployedModels.push({
    id: '7',
    model: 'projects/p/locations/us-central1/models/m',
    modelVersionId: '1',
  });
  t = await createTmpRepo({ 'out/features/stats.json': STATS, 'out/features/index.json': INDEX });
});
afterEach(async () => {
  await t.cleanup();
});

const options = () => ({
  vertexClientOptions: vertex.clientOptions(),
  gs: { apiEndpoint: gcs.url, projectId: 'p' },
});

describe('endpoint configure', () => {
  it('enables request logging and the monitoring job from the policy, then removes them with it', async () => {
    t.write(
      'promotion/prod.yaml',
      policy([
        '  request_logging: { table: "bq://p.logs.requests", sampling_rate: 0.25 }',
        'monitoring: { vertex: { email: [ml@example.com], drift_threshold: 0.1 } }',
      ]),
    );
    const first = await configureVertexEndpoint(t.repo, 'prod', options());
    expect(first.requestLogging).toBe('changed');
    expect(first.monitoring.action).toBe('create');
    expect(vertex.rejected).toEqual([]);
    const ep = vertex.endpoints.get(ENDPOINT) as unknown as Record<string, any>;
    expect(ep.predictRequestResponseLoggingConfig).toEqual({
      enabled: true,
      samplingRate: 0.25,
      bigqueryDestination: { outputUri: 'bq://p.logs.requests' },
    });
    // The baseline is the training marginals, staged under the remote.
    const uri = first.baselineUri!;
    expect(uri).toMatch(/^gs:\/\/bkt\/store\/monitoring\/prod\/training-[0-9a-f]{12}\.jsonl$/);
    const rows = gcs
      .object('bkt', uri.slice('gs://bkt/'.length))!
      .data.toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => r.label).sort()).toEqual(['a', 'a', 'b', 'b']);
    const job = [...state.monitoringJobs.values()][0] as Record<string, any>;
    expect(job.samplePredictInstance).toEqual({ features: [0, 0] });
    expect(job.modelDeploymentMonitoringObjectiveConfigs[0].deployedModelId).toBe('7');

    const again = await configureVertexEndpoint(t.repo, 'prod', options());
    expect(again.requestLogging).toBe('unchanged');
    expect(again.monitoring.action).toBe('none');

    t.write('promotion/prod.yaml', policy([]));
    const removed = await configureVertexEndpoint(t.repo, 'prod', options());
    expect(removed.requestLogging).toBe('changed');
    expect(removed.monitoring.action).toBe('delete');
    expect(ep.predictRequestResponseLoggingConfig).toEqual({ enabled: false });
    expect(state.monitoringJobs.size).toBe(0);
  });

  it('monitoring an endpoint with no deployed model is one line and changes nothing', async () => {
    vertex.endpoints.get(ENDPOINT)!.deployedModels.length = 0;
    t.write(
      'promotion/prod.yaml',
      policy([
        '  request_logging: { table: "bq://p.logs.requests", sampling_rate: 0.25 }',
        'monitoring: { vertex: { email: [ml@example.com] } }',
      ]),
    );
    const err = await configureVertexEndpoint(t.repo, 'prod', options()).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /^promotion\/prod\.yaml: monitoring\.vertex: no model is deployed on the endpoint ".*endpoints\/1"\. Deploy a model to it first/,
    );
    expect((err as Error).message).not.toContain('\n');
    const ep = vertex.endpoints.get(ENDPOINT) as unknown as Record<string, unknown>;
    expect(ep.predictRequestResponseLoggingConfig ?? undefined).toBeUndefined();
    expect(state.monitoringJobs.size).toBe(0);
    expect(vertex.rejected).toEqual([]);
  });

  it('an endpoint named by a display name that does not exist is not created, even by --dry', async () => {
    t.write(
      'promotion/prod.yaml',
      policy(['  request_logging: { table: "bq://p.logs.requests", sampling_rate: 0.25 }']).replace(
        'endpoint: "1"',
        'endpoint: emotion-prod',
      ),
    );
    for (const dry of [true, false]) {
      const err = await configureVertexEndpoint(t.repo, 'prod', { ...options(), dry }).catch((e: Error) => e);
      expect((err as Error).message).toMatch(
        /^endpoint\.endpoint: no Vertex AI endpoint named "emotion-prod" in projects\/p\/locations\/us-central1\. Deploy to it first/,
      );
    }
    expect([...vertex.endpoints.keys()]).toEqual([ENDPOINT]);
  });

  it('a local endpoint or a missing gs:// remote is one line and calls nothing', async () => {
    t.write('promotion/dev.yaml', 'branch: dev\n');
    await expect(configureVertexEndpoint(t.repo, 'dev', options())).rejects.toThrow(
      /^promotion\/dev\.yaml: endpoint\.kind: "local" has no Vertex AI settings\. lockstep monitor covers the local endpoint\.$/,
    );
    t.write(
      'promotion/prod.yaml',
      policy(['monitoring: { vertex: { email: [ml@example.com] } }']).replace(
        'remote: gs://bkt/store',
        'remote: /tmp/x',
      ),
    );
    await expect(configureVertexEndpoint(t.repo, 'prod', options())).rejects.toThrow(
      /^promotion\/prod\.yaml: remote: monitoring\.vertex needs a gs:\/\/ location .* Set remote: gs:\/\/bucket\/prefix\.$/,
    );
    expect(vertex.requests).toEqual([]);
  });
});
