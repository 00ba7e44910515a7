import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  baselineRows,
  reconcileMonitoringJob,
  type MonitoringJobTarget,
} from '../../lib/endpoints/vertex-monitoring.ts';
import { parsePolicy } from '../../lib/environment/policy.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import {
  fakeMetadataState,
  metadataRoutes,
  type FakeMetadataState,
} from '../support/fake-vertex-metadata.ts';

const PARENT = 'projects/p/locations/us-central1';
const ENDPOINT = `${PARENT}/endpoints/1`;

let fake: FakeVertex;
let state: FakeMetadataState;

beforeAll(async () => {
  fake = await new FakeVertex().start();
  fake.addEndpoint(ENDPOINT);
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  state = fakeMetadataState();
  fake.routes.length = 0;
  fake.use(metadataRoutes(state));
});

function policyWith(monitoring: string) {
  return parsePolicy(
    [
      'branch: prod',
      'endpoint: { kind: vertex, project: p, endpoint: "1", model: m, image: img }',
      monitoring,
    ].join('\n'),
    'promotion/prod.yaml',
  );
}

const target = (ids: string[]): MonitoringJobTarget => ({
  parent: PARENT,
  endpoint: ENDPOINT,
  env: 'prod',
  deployedModelIds: ids,
  baselineUri: 'gs://b/monitoring/prod/training-0123456789ab.jsonl',
  featureCount: 3,
});

describe('vertex model monitoring job', () => {
  it('is created, updated and deleted with the policy; an unchanged policy changes nothing', async () => {
    const opts = { clientOptions: fake.clientOptions(), pollInitialMs: 5 };
    const first = policyWith(
      'monitoring: { vertex: { email: [ml@example.com], skew_threshold: 0.2, interval_hours: 6 } }',
    );
    const created = await reconcileMonitoringJob(target(['7']), first.monitoring?.vertex, opts);
    expect(created.action).toBe('create');
    expect(fake.rejected).toEqual([]);
    expect(state.monitoringJobs.size).toBe(1);
    const job = [...state.monitoringJobs.values()][0] as Record<string, any>;
    expect(job.displayName).toBe('lockstep-prod');
    expect(job.modelMonitoringAlertConfig.emailAlertConfig.userEmails).toEqual(['ml@example.com']);
    expect(job.modelDeploymentMonitoringScheduleConfig.monitorInterval).toBe('21600s');
    const objective = job.modelDeploymentMonitoringObjectiveConfigs[0];
    expect(objective.deployedModelId).toBe('7');
    expect(objective.objectiveConfig.trainingDataset).toEqual({
      gcsSource: { uris: ['gs://b/monitoring/prod/training-0123456789ab.jsonl'] },
      dataFormat: 'jsonl',
      targetField: 'label',
    });
    expect(objective.objectiveConfig.trainingPredictionSkewDetectionConfig.defaultSkewThreshold.value).toBe(
      0.2,
    );
    expect(job.samplePredictInstance).toEqual({ features: [0, 0, 0] });

    const again = await reconcileMonitoringJob(target(['7']), first.monitoring?.vertex, opts);
    expect(again, again.reason).toMatchObject({ action: 'none', reason: 'the job matches the policy' });

    const changed = policyWith(
      'monitoring: { vertex: { email: [ml@example.com, oncall@example.com], skew_threshold: 0.2, interval_hours: 6 } }',
    );
    const updated = await reconcileMonitoringJob(target(['7', '8']), changed.monitoring?.vertex, opts);
    expect(updated.action).toBe('update');
    expect(updated.paths.sort()).toEqual([
      'model_deployment_monitoring_objective_configs',
      'model_monitoring_alert_config',
    ]);
    const after = state.monitoringJobs.get(updated.name!) as Record<string, any>;
    expect(after.modelMonitoringAlertConfig.emailAlertConfig.userEmails).toHaveLength(2);
    expect(after.modelDeploymentMonitoringObjectiveConfigs).toHaveLength(2);

    const removed = await reconcileMonitoringJob(target(['7', '8']), policyWith('').monitoring?.vertex, opts);
    expect(removed.action).toBe('delete');
    expect(state.monitoringJobs.size).toBe(0);
    expect(fake.rejected).toEqual([]);
  });

  it('--dry plans without calling create; a 403 is one line and leaves Vertex unchanged', async () => {
    const policy = policyWith('monitoring: { vertex: { email: [ml@example.com] } }').monitoring?.vertex;
    const opts = { clientOptions: fake.clientOptions(), pollInitialMs: 5 };
    expect((await reconcileMonitoringJob(target(['7']), policy, { ...opts, dry: true })).action).toBe(
      'create',
    );
    expect(state.monitoringJobs.size).toBe(0);
    state.faults.set('createModelDeploymentMonitoringJob', 403);
    const err = await reconcileMonitoringJob(target(['7']), policy, opts).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /^promotion\/prod\.yaml: monitoring\.vertex: create ModelDeploymentMonitoringJob failed ".*". Grant the caller roles\/aiplatform\.user on the project\.$/,
    );
    expect(state.monitoringJobs.size).toBe(0);
  });

  it('a monitoring job lockstep did not make is neither deleted nor overwritten', async () => {
    const opts = { clientOptions: fake.clientOptions(), pollInitialMs: 5 };
    const name = `${PARENT}/modelDeploymentMonitoringJobs/console-made`;
    const handMade = { name, displayName: 'my-console-job', endpoint: ENDPOINT, labels: { team: 'ml' } };
    state.monitoringJobs.set(name, { ...handMade });
    // No monitoring.vertex in the policy: nothing to remove.
    const plan = await reconcileMonitoringJob(target(['7']), policyWith('').monitoring?.vertex, opts);
    expect(plan.action).toBe('none');
    expect(state.monitoringJobs.get(name)).toEqual(handMade);
    const policy = policyWith('monitoring: { vertex: { email: [ml@example.com] } }').monitoring?.vertex;
    const err = await reconcileMonitoringJob(target(['7']), policy, opts).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /^promotion\/prod\.yaml: monitoring\.vertex: the endpoint already has a monitoring job lockstep did not make ".*console-made"\. Delete it/,
    );
    expect((err as Error).message.split('\n')).toHaveLength(1);
    expect([...state.monitoringJobs.values()]).toEqual([handMade]);
  });

  it('the policy refuses bad monitoring input where it is read', () => {
    expect(() => policyWith('monitoring: { vertex: { email: [not-an-email] } }')).toThrow(
      /monitoring\.vertex\.email/,
    );
    expect(() => policyWith('monitoring: { vertex: { email: [a@b.co], interval_hours: 48 } }')).toThrow(
      /interval_hours/,
    );
    expect(() =>
      parsePolicy('branch: dev\nmonitoring: { vertex: { email: [a@b.co] } }\n', 'promotion/dev.yaml'),
    ).toThrow(/monitoring\.vertex: needs a Vertex AI endpoint/);
  });

  it('baselineRows keeps each feature its training marginal', () => {
    const rows = baselineRows({
      featureNames: ['a', 'b'],
      histograms: {
        a: { edges: [0, 1, 2], counts: [0, 3, 1, 0] },
        b: { edges: [0, 1, 2], counts: [0, 1, 3, 0] },
      },
      labelCounts: { x: 2, y: 2 },
    });
    expect(rows).toHaveLength(4);
    expect(rows.map((r) => r.features[0]).sort()).toEqual([0.5, 0.5, 0.5, 1.5]);
    expect(rows.map((r) => r.features[1]).sort()).toEqual([0.5, 1.5, 1.5, 1.5]);
    expect(rows.map((r) => r.label).sort()).toEqual(['x', 'x', 'y', 'y']);
  });
});
