/**
 * A Vertex AI endpoint through `@google-cloud/aiplatform`: each model hash is uploaded once as a
 * new version of one parent model (version alias `h-<hash12>`, labels carrying the full hash),
 * deployed with a traffic split (`{"0": 10, "<stable>": 90}`), moved through canary steps with
 * `updateEndpoint` and an update mask on `traffic_split` (mutateDeployedModel cannot change
 * traffic), and undeployed once it has no traffic. Long-running operations are awaited with a
 * timeout; calls the service rejected as unavailable are retried with backoff. The canary status
 * lives in the endpoint's labels so a scheduled reconcile needs no other state.
 */
import { v1, helpers } from '@google-cloud/aiplatform';
import { LockstepError, UsageError } from '../errors.ts';
import type { Policy } from '../environment/policy.ts';
import { PATHS } from '../paths.ts';
import {
  checkSplit,
  splitWithNew,
  type CanaryStatus,
  type DeployedModel,
  type Endpoint,
  type EndpointDescription,
  type ModelRef,
  type PredictInstance,
  type PredictResponse,
  type TrafficSplit,
} from '../serving/endpoint.ts';
import { canaryLabels, isCanaryLabel, readCanaryLabels } from './vertex-labels.ts';
import { awaitVertexOperation, retryVertexCall, type VertexCallOptions } from './vertex-calls.ts';
import { ensureModelVersion, modelRefFromLabels, type ModelVersionHost } from './vertex-model-upload.ts';

export type VertexTarget = Extract<Policy['endpoint'], { kind: 'vertex' }>;

export interface VertexEndpointOptions extends VertexCallOptions {
  /** Extra client options (apiEndpoint, port, protocol, fallback, authClient...). */
  clientOptions?: Record<string, unknown>;
  /**
   * Copies the model directory somewhere Vertex can read it and returns that `gs://` URI (the
   * model's artifactUri; the container receives it as AIP_STORAGE_URI). Required to deploy.
   */
  stageModel?: (model: ModelRef) => Promise<string>;
  /**
   * `gs://` prefix the serving containers ship their prediction logs to (the policy's `logs:`),
   * passed to new model versions as the LOCKSTEP_LOG_URI container variable.
   */
  logUri?: string;
  /**
   * The policy's `serving.on_error_anomaly`; `flag` is passed to new model versions as the
   * LOCKSTEP_ON_ERROR_ANOMALY container variable (unset: the container rejects).
   */
  onErrorAnomaly?: 'reject' | 'flag';
  /**
   * Labels and description for a new model version (commit, data hash, gate verdict: see
   * lib/endpoints/vertex-mirror.ts); without it a version carries only the model's hash and size.
   */
  versionMetadata?: (model: ModelRef) => Promise<{ labels: Record<string, string>; description: string }>;
}

export class VertexEndpoint implements Endpoint {
  readonly kind = 'vertex' as const;
  readonly target: VertexTarget;
  private readonly options: VertexEndpointOptions;
  private readonly endpoints: InstanceType<typeof v1.EndpointServiceClient>;
  private readonly models: InstanceType<typeof v1.ModelServiceClient>;
  private readonly predictions: InstanceType<typeof v1.PredictionServiceClient>;
  private endpointName: string | undefined;
  private readonly refs = new Map<string, ModelRef>();

  constructor(target: VertexTarget, options: VertexEndpointOptions = {}) {
    this.target = target;
    this.options = options;
    const clientOptions = {
      apiEndpoint: `${target.region}-aiplatform.googleapis.com`,
      ...options.clientOptions,
    };
    this.endpoints = new v1.EndpointServiceClient(clientOptions);
    this.models = new v1.ModelServiceClient(clientOptions);
    this.predictions = new v1.PredictionServiceClient(clientOptions);
  }

  get parent(): string {
    return `projects/${this.target.project}/locations/${this.target.region}`;
  }

  /** The parent model's resource name (the policy gives a resource name or a model id). */
  get modelName(): string {
    return this.target.model.startsWith('projects/')
      ? this.target.model
      : `${this.parent}/models/${this.target.model}`;
  }

  async close(): Promise<void> {
    await Promise.all([this.endpoints.close(), this.models.close(), this.predictions.close()]);
  }

  private retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return retryVertexCall(this.options, what, fn);
  }

  private operation<T>(
    what: string,
    start: (callOptions: Record<string, unknown>) => Promise<unknown>,
  ): Promise<T> {
    return awaitVertexOperation(this.options, what, start);
  }

  /**
   * The endpoint resource name: the numeric id from the policy, or found / created by display
   * name (`create: false`: a missing one is a UsageError instead).
   */
  async resolveEndpoint(options: { create?: boolean } = {}): Promise<string> {
    if (this.endpointName) return this.endpointName;
    const e = this.target.endpoint;
    if (e.startsWith('projects/')) this.endpointName = e;
    else if (/^\d+$/.test(e)) this.endpointName = `${this.parent}/endpoints/${e}`;
    else {
      const [found] = await this.retry('listEndpoints', () =>
        this.endpoints.listEndpoints(
          { parent: this.parent, filter: `display_name="${e}"` },
          { autoPaginate: true },
        ),
      );
      if (found[0]?.name) this.endpointName = found[0].name;
      else if (options.create === false)
        throw new UsageError(
          `endpoint.endpoint: no Vertex AI endpoint named "${e}" in ${this.parent}. Deploy to it first (lockstep canary reconcile), which creates it.`,
        );
      else {
        const created = await this.operation<{ name?: string | null }>('createEndpoint', (o) =>
          this.endpoints.createEndpoint({ parent: this.parent, endpoint: { displayName: e } }, o),
        );
        this.endpointName = created.name!;
      }
    }
    return this.endpointName!;
  }

  private async getEndpoint() {
    const name = await this.resolveEndpoint();
    const [ep] = await this.retry('getEndpoint', () => this.endpoints.getEndpoint({ name }));
    return ep;
  }

  /** The lockstep model ref of a model version (from its labels), cached. */
  private async refOf(model: string, versionId: string): Promise<ModelRef | undefined> {
    const key = `${model}@${versionId}`;
    if (this.refs.has(key)) return this.refs.get(key);
    const [m] = await this.retry('getModel', () => this.models.getModel({ name: key }));
    const ref = modelRefFromLabels((m.labels ?? {}) as Record<string, string>);
    if (!ref) return undefined;
    this.refs.set(key, ref);
    return ref;
  }

  /** The version of the parent model holding `hash`, uploading it (once per hash) if needed. */
  ensureModelVersion(model: ModelRef): Promise<{ name: string; versionId: string }> {
    const host: ModelVersionHost = {
      target: this.target,
      options: this.options,
      models: this.models,
      parent: this.parent,
      modelName: this.modelName,
    };
    return ensureModelVersion(host, model);
  }

  async deploy(model: ModelRef, percent: number): Promise<DeployedModel> {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100)
      throw new UsageError(`percent: not a whole percentage 0..100 "${percent}". Pass e.g. 10.`);
    const before = await this.describe();
    const existing = before.deployedModels.find((d) => d.model.hash === model.hash);
    if (existing) return existing;
    const version = await this.ensureModelVersion(model);
    const endpoint = await this.resolveEndpoint();
    const split =
      before.deployedModels.length === 0 ? { '0': 100 } : splitWithNew(before.trafficSplit, '0', percent);
    const result = await this.operation<{ deployedModel?: { id?: string | null } | null }>(
      'deployModel',
      (o) =>
        this.endpoints.deployModel(
          {
            endpoint,
            deployedModel: {
              model: `${version.name}@${version.versionId}`,
              displayName: `lockstep-${model.hash.slice(0, 12)}`,
              dedicatedResources: {
                machineSpec: { machineType: this.target.machine_type },
                minReplicaCount: this.target.min_replicas,
                maxReplicaCount: this.target.max_replicas,
              },
            },
            trafficSplit: split,
          },
          o,
        ),
    );
    const id = result.deployedModel?.id;
    if (!id)
      throw new LockstepError(
        `vertex deployModel: the operation returned no deployed model id. Check the endpoint ${endpoint} in the console.`,
      );
    this.refs.set(`${version.name}@${version.versionId}`, model);
    return {
      id,
      model,
      deployedAt: new Date().toISOString(),
      modelVersion: `${version.name}@${version.versionId}`,
    };
  }

  async setTraffic(split: TrafficSplit): Promise<void> {
    const ep = await this.getEndpoint();
    const ids = (ep.deployedModels ?? []).map((d) => d.id!);
    const full: TrafficSplit = Object.fromEntries(ids.map((id) => [id, split[id] ?? 0]));
    const problem = checkSplit(split, ids) ?? checkSplit(full, ids);
    if (problem)
      throw new UsageError(
        `${ep.name}: trafficSplit: ${problem}. Give every deployed model a share summing to 100.`,
      );
    const current = Object.fromEntries(ids.map((id) => [id, (ep.trafficSplit ?? {})[id] ?? 0]));
    if (JSON.stringify(current) === JSON.stringify(full)) return;
    await this.retry('updateEndpoint', () =>
      this.endpoints.updateEndpoint({
        endpoint: { name: ep.name, trafficSplit: full },
        updateMask: { paths: ['traffic_split'] },
      }),
    );
  }

  async undeploy(deployedModelId: string): Promise<void> {
    const ep = await this.getEndpoint();
    if (!(ep.deployedModels ?? []).some((d) => d.id === deployedModelId)) return;
    const traffic = (ep.trafficSplit ?? {})[deployedModelId] ?? 0;
    if (traffic > 0)
      throw new UsageError(
        `${ep.name}: deployed model "${deployedModelId}" still has ${traffic}% of the traffic. Move its traffic first (setTraffic).`,
      );
    await this.operation('undeployModel', (o) =>
      this.endpoints.undeployModel({ endpoint: ep.name!, deployedModelId }, o),
    );
  }

  async describe(): Promise<EndpointDescription> {
    const ep = await this.getEndpoint();
    const deployedModels: DeployedModel[] = [];
    for (const d of ep.deployedModels ?? []) {
      const [modelName, versionFromName] = (d.model ?? '').split('@');
      const versionId = d.modelVersionId || versionFromName || '1';
      const ref = await this.refOf(modelName, versionId);
      const createdSeconds = Number((d.createTime as { seconds?: unknown } | null | undefined)?.seconds ?? 0);
      deployedModels.push({
        id: d.id!,
        model: ref ?? { path: PATHS.model, hash: '0'.repeat(64), size: 0, nfiles: 0, dir: true },
        deployedAt: new Date(createdSeconds * 1000).toISOString(),
        modelVersion: `${modelName}@${versionId}`,
      });
    }
    const trafficSplit = Object.fromEntries(
      Object.entries(ep.trafficSplit ?? {}).map(([k, v]) => [k, Number(v)]),
    );
    const canary = readCanaryLabels((ep.labels ?? {}) as Record<string, string>);
    return { kind: 'vertex', name: ep.name!, deployedModels, trafficSplit, ...(canary ? { canary } : {}) };
  }

  async predict(instances: PredictInstance[]): Promise<PredictResponse> {
    const endpoint = await this.resolveEndpoint();
    const [res] = await this.retry('predict', () =>
      this.predictions.predict({ endpoint, instances: instances.map((i) => helpers.toValue(i)!) }),
    );
    return {
      predictions: (res.predictions ?? []).map(
        (p) => helpers.fromValue(p as never) as unknown as PredictResponse['predictions'][number],
      ),
      deployedModelId: res.deployedModelId ?? '',
      modelVersionId: res.modelVersionId ?? '',
    };
  }

  /**
   * Sets the endpoint's request-response logging to BigQuery (`table` bq://project.dataset.table,
   * `samplingRate`), or turns it off with undefined; no call when it already matches.
   */
  async setRequestLogging(config: { table: string; samplingRate: number } | undefined): Promise<boolean> {
    const ep = await this.getEndpoint();
    const have = ep.predictRequestResponseLoggingConfig;
    const want = config
      ? { enabled: true, samplingRate: config.samplingRate, bigqueryDestination: { outputUri: config.table } }
      : { enabled: false };
    const same = config
      ? Boolean(have?.enabled) &&
        have?.samplingRate === config.samplingRate &&
        have?.bigqueryDestination?.outputUri === config.table
      : !have?.enabled;
    if (same) return false;
    await this.retry('updateEndpoint', () =>
      this.endpoints.updateEndpoint({
        endpoint: { name: ep.name, predictRequestResponseLoggingConfig: want },
        updateMask: { paths: ['predict_request_response_logging_config'] },
      }),
    );
    return true;
  }

  async writeCanaryStatus(status: CanaryStatus | undefined): Promise<void> {
    const ep = await this.getEndpoint();
    const labels = Object.fromEntries(
      Object.entries((ep.labels ?? {}) as Record<string, string>).filter(([k]) => !isCanaryLabel(k)),
    );
    if (status) Object.assign(labels, canaryLabels(status));
    if (
      JSON.stringify(sortKeys(labels)) ===
      JSON.stringify(sortKeys((ep.labels ?? {}) as Record<string, string>))
    )
      return;
    await this.retry('updateEndpoint', () =>
      this.endpoints.updateEndpoint({
        endpoint: { name: ep.name, labels },
        updateMask: { paths: ['labels'] },
      }),
    );
  }
}

function sortKeys(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1)));
}
