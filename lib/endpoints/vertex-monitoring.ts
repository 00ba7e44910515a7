/**
 * Vertex AI Model Monitoring on an environment's endpoint, kept in line with
 * `promotion/<env>.yaml` `monitoring.vertex`: one ModelDeploymentMonitoringJob per endpoint
 * (display name `lockstep-<env>`), created when the section appears, updated when a threshold,
 * the sampling, the interval, the e-mails or the deployed models change, deleted when the section
 * is removed. Plan, then act: `planMonitoringJob` says what would change and why.
 *
 * The job reads `{features: [...]}` instances (the raw summary vector `lockstep predict` and
 * batch send; a sample instance tells Vertex the shape) and compares them with the skew
 * baseline: a JSONL file of training rows rebuilt from featurize's training statistics
 * (`baselineRows`), staged to gs:// by the caller. Vertex's skew and drift distances are per
 * feature, so rows that keep each feature's training marginal give it the same baseline.
 */
import { v1, helpers } from '@google-cloud/aiplatform';
import { LockstepError } from '../errors.ts';
import type { VertexMonitoring } from '../environment/policy.ts';
import type { MonitorReference } from '../monitoring/monitor.ts';

export interface MonitoringJobTarget {
  /** `projects/P/locations/L` */
  parent: string;
  /** The endpoint's resource name. */
  endpoint: string;
  env: string;
  /** Deployed model ids on the endpoint (each gets an objective). */
  deployedModelIds: string[];
  /** gs:// JSONL of training rows (`{features, label}`), the skew baseline. */
  baselineUri: string;
  /** Length of the raw summary vector (the sample instance). */
  featureCount: number;
}

export interface MonitoringPlan {
  action: 'create' | 'update' | 'delete' | 'none';
  /** Existing job, when there is one. */
  name?: string;
  /** Field paths an update changes. */
  paths: string[];
  reason: string;
}

type JobClient = InstanceType<typeof v1.JobServiceClient>;
type Job = Record<string, unknown>;

const KEY = (env: string) => `promotion/${env}.yaml: monitoring.vertex`;

/**
 * Training rows with each feature's training marginal (histogram bin centres, repeated by count;
 * the overflow bins at the outer edges): the skew baseline Vertex reads.
 */
export function baselineRows(reference: MonitorReference): { features: number[]; label?: string }[] {
  const columns = reference.featureNames.map((name) => {
    const h = reference.histograms[name];
    if (!h) return [] as number[];
    const values: number[] = [];
    const inner = h.counts.length === h.edges.length + 1;
    h.counts.forEach((count, i) => {
      let v: number;
      if (inner) {
        // [under, (e0,e1), ..., over]
        if (i === 0) v = h.edges[0];
        else if (i === h.counts.length - 1) v = h.edges[h.edges.length - 1];
        else v = (h.edges[i - 1] + h.edges[i]) / 2;
      } else v = (h.edges[i] + h.edges[Math.min(i + 1, h.edges.length - 1)]) / 2;
      for (let k = 0; k < count; k++) values.push(v);
    });
    return values;
  });
  const n = Math.max(0, ...columns.map((c) => c.length));
  const labels = Object.entries(reference.labelCounts ?? {}).flatMap(([l, c]) => Array<string>(c).fill(l));
  return Array.from({ length: n }, (_, i) => ({
    features: columns.map((c) => (c.length ? c[Math.floor((i * c.length) / n)] : 0)),
    ...(labels.length ? { label: labels[Math.floor((i * labels.length) / n)] } : {}),
  }));
}

/** The job the policy asks for (proto3 JSON field names, as the client takes them). */
export function desiredMonitoringJob(target: MonitoringJobTarget, policy: VertexMonitoring): Job {
  return {
    displayName: `lockstep-${target.env}`,
    endpoint: target.endpoint,
    labels: { 'lockstep-env': target.env },
    modelDeploymentMonitoringObjectiveConfigs: [...target.deployedModelIds].sort().map((id) => ({
      deployedModelId: id,
      objectiveConfig: {
        trainingDataset: {
          gcsSource: { uris: [target.baselineUri] },
          dataFormat: 'jsonl',
          targetField: 'label',
        },
        trainingPredictionSkewDetectionConfig: { defaultSkewThreshold: { value: policy.skew_threshold } },
        predictionDriftDetectionConfig: { defaultDriftThreshold: { value: policy.drift_threshold } },
      },
    })),
    modelDeploymentMonitoringScheduleConfig: {
      monitorInterval: { seconds: policy.interval_hours * 3600 },
    },
    loggingSamplingStrategy: { randomSampleConfig: { sampleRate: policy.sample_rate } },
    modelMonitoringAlertConfig: { emailAlertConfig: { userEmails: [...policy.email] } },
    samplePredictInstance: helpers.toValue({ features: Array<number>(target.featureCount).fill(0) }),
  };
}

/** Fields compared and updated, with their update-mask paths. */
const FIELDS: [keyof Job & string, string][] = [
  ['modelDeploymentMonitoringObjectiveConfigs', 'model_deployment_monitoring_objective_configs'],
  ['modelDeploymentMonitoringScheduleConfig', 'model_deployment_monitoring_schedule_config'],
  ['loggingSamplingStrategy', 'logging_sampling_strategy'],
  ['modelMonitoringAlertConfig', 'model_monitoring_alert_config'],
];

/** Comparable form of a job field as the client returns it (defaults and nulls dropped). */
function normal(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normal);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === null || x === undefined || x === '' || (Array.isArray(x) && x.length === 0)) continue;
      if (k === 'seconds' || k === 'nanos') {
        if (Number(x) !== 0) out[k] = Number(x);
        continue;
      }
      const n = normal(x);
      if (n && typeof n === 'object' && !Array.isArray(n) && Object.keys(n).length === 0) continue;
      out[k] = n;
    }
    return out;
  }
  return v;
}

/**
 * `have` restricted to the keys `want` sets: the client returns every proto field (defaults,
 * oneof names), and only the fields lockstep sets decide whether the job matches.
 */
function projectOnto(have: unknown, want: unknown): unknown {
  if (Array.isArray(want))
    return Array.isArray(have)
      ? have.map((h, i) => projectOnto(h, want[Math.min(i, want.length - 1)]))
      : have;
  if (want && typeof want === 'object' && have && typeof have === 'object') {
    return Object.fromEntries(
      Object.keys(want).map((k) => [
        k,
        projectOnto((have as Record<string, unknown>)[k], (want as Record<string, unknown>)[k]),
      ]),
    );
  }
  return have;
}

/** What to do, given the existing job on the endpoint (if any) and the desired one. */
export function planMonitoringJob(existing: Job | undefined, desired: Job | undefined): MonitoringPlan {
  const name = existing?.name as string | undefined;
  if (!desired)
    return existing
      ? { action: 'delete', name, paths: [], reason: 'monitoring.vertex was removed from the policy' }
      : { action: 'none', paths: [], reason: 'no monitoring.vertex in the policy' };
  if (!existing) return { action: 'create', paths: [], reason: 'monitoring.vertex is new' };
  const paths = FIELDS.filter(
    ([field]) =>
      JSON.stringify(normal(desired[field])) !==
      JSON.stringify(normal(projectOnto(existing[field], desired[field]))),
  ).map(([, path]) => path);
  return paths.length
    ? { action: 'update', name, paths, reason: `changed: ${paths.join(', ')}` }
    : { action: 'none', name, paths: [], reason: 'the job matches the policy' };
}

function wrap(env: string, what: string, err: unknown): LockstepError {
  if (err instanceof LockstepError) return err;
  const e = err as { code?: number; message?: string };
  const msg = (e.message ?? String(err)).split('\n')[0];
  const fix = [7, 403].includes(e.code ?? -1)
    ? 'Grant the caller roles/aiplatform.user on the project'
    : 'Check the endpoint and monitoring.vertex in the policy';
  return new LockstepError(`${KEY(env)}: ${what} failed "${msg}". ${fix}.`, { cause: err });
}

/** The job needs one objective per deployed model, and the service refuses a job with none. */
export function noDeployedModel(env: string, endpoint: string): LockstepError {
  return new LockstepError(
    `${KEY(env)}: no model is deployed on the endpoint "${endpoint}". Deploy a model to it first (lockstep canary reconcile --env ${env}), then run lockstep endpoint configure --env ${env} again.`,
  );
}

export interface ReconcileMonitoringOptions {
  clientOptions?: Record<string, unknown>;
  /** Print the plan only. */
  dry?: boolean;
  /** Delay before the first poll of an update or delete operation (default 1000 ms). */
  pollInitialMs?: number;
}

/** Creates, updates or deletes the endpoint's monitoring job to match `policy`; returns the plan. */
export async function reconcileMonitoringJob(
  target: Omit<MonitoringJobTarget, 'baselineUri'> & { baselineUri?: string },
  policy: VertexMonitoring | undefined,
  options: ReconcileMonitoringOptions = {},
): Promise<MonitoringPlan> {
  const region = target.parent.split('/')[3];
  const client: JobClient = new v1.JobServiceClient({
    apiEndpoint: `${region}-aiplatform.googleapis.com`,
    ...options.clientOptions,
  });
  try {
    let jobs: Job[];
    try {
      [jobs] = (await client.listModelDeploymentMonitoringJobs(
        { parent: target.parent },
        { autoPaginate: true },
      )) as unknown as [Job[]];
    } catch (err) {
      throw wrap(target.env, 'listModelDeploymentMonitoringJobs', err);
    }
    const existing = jobs.find((j) => j.endpoint === target.endpoint);
    // The service allows one job per endpoint; one made by hand (or for another environment
    // sharing the endpoint) is never updated or deleted from here.
    const ours =
      (existing?.labels as Record<string, string> | null | undefined)?.['lockstep-env'] === target.env ||
      existing?.displayName === `lockstep-${target.env}`;
    if (existing && !ours) {
      if (!policy)
        return {
          action: 'none',
          paths: [],
          reason: `the endpoint's monitoring job "${String(existing.name)}" was not made by lockstep for ${target.env}; left alone`,
        };
      throw new LockstepError(
        `${KEY(target.env)}: the endpoint already has a monitoring job lockstep did not make "${String(existing.name)}". Delete it (gcloud ai model-monitoring-jobs delete) or remove monitoring.vertex.`,
      );
    }
    if (policy && target.deployedModelIds.length === 0) throw noDeployedModel(target.env, target.endpoint);
    if (policy && !target.baselineUri)
      throw new LockstepError(
        `${KEY(target.env)}: no skew baseline staged. Set remote: gs://bucket/prefix in the policy so the training statistics can be staged.`,
      );
    const desired = policy
      ? desiredMonitoringJob({ ...target, baselineUri: target.baselineUri! }, policy)
      : undefined;
    const plan = planMonitoringJob(existing, desired);
    if (options.dry || plan.action === 'none') return plan;
    const lro = {
      longrunning: {
        initialRetryDelayMillis: options.pollInitialMs ?? 1000,
        retryDelayMultiplier: 1.5,
        maxRetryDelayMillis: 30_000,
        totalTimeoutMillis: 30 * 60_000,
      },
    };
    try {
      if (plan.action === 'create') {
        const [created] = await client.createModelDeploymentMonitoringJob({
          parent: target.parent,
          modelDeploymentMonitoringJob: desired as never,
        });
        plan.name = created.name ?? undefined;
      } else if (plan.action === 'update') {
        const [op] = await client.updateModelDeploymentMonitoringJob(
          {
            modelDeploymentMonitoringJob: { ...(desired as object), name: plan.name } as never,
            updateMask: { paths: plan.paths },
          },
          lro,
        );
        await op.promise();
      } else {
        const [op] = await client.deleteModelDeploymentMonitoringJob({ name: plan.name }, lro);
        await op.promise();
      }
    } catch (err) {
      throw wrap(target.env, `${plan.action} ModelDeploymentMonitoringJob`, err);
    }
    return plan;
  } finally {
    await client.close();
  }
}
