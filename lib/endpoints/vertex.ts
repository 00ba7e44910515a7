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
import type { Output } from '../output.ts';
import type { Policy } from '../environment/policy.ts';
import { LOG_URI_ENV } from '../serving/ship.ts';
import { ON_ERROR_ANOMALY_ENV } from '../serving/checks.ts';
import { PATHS } from '../paths.ts';
import { imageDigestLabels } from '../image-ref.ts';
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

export type VertexTarget = Extract<Policy['endpoint'], { kind: 'vertex' }>;

export interface VertexEndpointOptions {
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
  /** Longest wait for one long-running operation (default 30 min: deployments take minutes). */
  operationTimeoutMs?: number;
  /** Delay before the first poll of an operation (default 1000 ms). */
  pollInitialMs?: number;
  /** Retries of a call the service rejected as unavailable (default 3). */
  retries?: number;
  /** First retry delay (default 1000 ms, doubling). */
  retryDelayMs?: number;
  out?: Output;
}

// Status codes safe to retry for calls that start operations (the request was not accepted):
// gRPC codes, and the HTTP codes the REST transport reports instead.
const RETRYABLE = new Set([8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */, 429, 503]);
const isNotFound = (err: unknown) => [5, 404].includes((err as { code?: number }).code ?? -1);
const CANARY = 'lockstep-canary-';

function hashLabels(prefix: string, hash: string): Record<string, string> {
  return { [`${prefix}hash-a`]: hash.slice(0, 32), [`${prefix}hash-b`]: hash.slice(32) };
}

function hashFromLabels(
  prefix: string,
  labels: Record<string, string> | null | undefined,
): string | undefined {
  const a = labels?.[`${prefix}hash-a`];
  const b = labels?.[`${prefix}hash-b`];
  return a && b ? a + b : undefined;
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

  /** Retries `fn` when the service answered UNAVAILABLE / RESOURCE_EXHAUSTED. */
  private async retry<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const retries = this.options.retries ?? 3;
    let delay = this.options.retryDelayMs ?? 1000;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const code = (err as { code?: number }).code;
        if (attempt >= retries || code === undefined || !RETRYABLE.has(code)) throw this.wrap(what, err);
        this.options.out?.err(
          `vertex: ${what}: ${(err as Error).message.split('\n')[0]}; retrying in ${delay} ms`,
        );
        await new Promise((r) => setTimeout(r, delay));
        delay *= 2;
      }
    }
  }

  private wrap(what: string, err: unknown): LockstepError {
    if (err instanceof LockstepError) return err;
    const msg = (err as Error).message?.split('\n')[0] ?? String(err);
    return new LockstepError(
      `vertex ${what}: ${msg}. Check the endpoint in promotion/<env>.yaml and your Google Cloud permissions.`,
      { cause: err },
    );
  }

  /** Starts a long-running operation and waits for its result, bounded by the timeout. */
  private async operation<T>(
    what: string,
    start: (callOptions: Record<string, unknown>) => Promise<unknown>,
  ): Promise<T> {
    const timeoutMs = this.options.operationTimeoutMs ?? 30 * 60_000;
    const callOptions = {
      longrunning: {
        initialRetryDelayMillis: this.options.pollInitialMs ?? 1000,
        retryDelayMultiplier: 1.5,
        maxRetryDelayMillis: 30_000,
        totalTimeoutMillis: timeoutMs,
      },
    };
    const [op] = (await this.retry(what, () => start(callOptions))) as [
      { name?: string; promise(): Promise<[T]> },
    ];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new LockstepError(
              `vertex ${what}: operation ${op.name} did not finish within ${Math.round(timeoutMs / 1000)} s. Check it in the console and re-run.`,
            ),
          ),
        timeoutMs,
      );
    });
    try {
      const [result] = await Promise.race([op.promise(), timeout]);
      return result;
    } catch (err) {
      throw this.wrap(`${what} (operation ${op.name})`, err);
    } finally {
      clearTimeout(timer);
    }
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
    const labels = (m.labels ?? {}) as Record<string, string>;
    const hash = hashFromLabels('lockstep-', labels);
    if (!hash) return undefined;
    const ref: ModelRef = {
      path: PATHS.model,
      hash,
      size: Number(labels['lockstep-size'] ?? 0),
      nfiles: Number(labels['lockstep-nfiles'] ?? 0),
      dir: true,
    };
    this.refs.set(key, ref);
    return ref;
  }

  /** The version of the parent model holding `hash`, uploading it (once per hash) if needed. */
  async ensureModelVersion(model: ModelRef): Promise<{ name: string; versionId: string }> {
    // `h-<hash12>` names the version; when another model's hash shares those 12 characters
    // (its labels say so), this one goes by `h-<full hash>` instead.
    let alias = `h-${model.hash.slice(0, 12)}`;
    for (const candidate of [alias, `h-${model.hash}`]) {
      alias = candidate;
      let m;
      try {
        [m] = await this.models.getModel({ name: `${this.modelName}@${candidate}` });
      } catch (err) {
        if (!isNotFound(err)) throw this.wrap('getModel', err);
        break;
      }
      const held = hashFromLabels('lockstep-', (m.labels ?? {}) as Record<string, string>);
      if (held && held !== model.hash) continue;
      this.checkLogUri(candidate, m.containerSpec?.env);
      return { name: this.modelName, versionId: m.versionId! };
    }
    let parentExists = true;
    try {
      await this.models.getModel({ name: this.modelName });
    } catch (err) {
      if (!isNotFound(err)) throw this.wrap('getModel', err);
      parentExists = false;
    }
    if (!this.options.stageModel) {
      throw new UsageError(
        `vertex: no way to stage model ${model.hash.slice(0, 12)} for upload. Pass stageModel (a gs:// copy of the model directory).`,
      );
    }
    const artifactUri = await this.options.stageModel(model);
    const meta = await this.options.versionMetadata?.(model);
    const modelId = this.modelName.split('/').pop()!;
    const result = await this.operation<{ model?: string | null; modelVersionId?: string | null }>(
      'uploadModel',
      (o) =>
        this.models.uploadModel(
          {
            parent: this.parent,
            ...(parentExists ? { parentModel: this.modelName } : { modelId }),
            model: {
              displayName: modelId,
              versionAliases: [alias],
              versionDescription:
                meta?.description ??
                `lockstep out/model ${model.hash}${model.commit ? ` (commit ${model.commit.slice(0, 12)})` : ''}`,
              artifactUri,
              labels: {
                ...meta?.labels,
                ...hashLabels('lockstep-', model.hash),
                'lockstep-size': String(model.size),
                'lockstep-nfiles': String(model.nfiles),
                ...imageDigestLabels(this.target.image),
              },
              containerSpec: {
                imageUri: this.target.image,
                predictRoute: '/predict',
                healthRoute: '/health',
                ports: [{ containerPort: 8080 }],
                ...(this.containerEnv().length ? { env: this.containerEnv() } : {}),
              },
            },
          },
          o,
        ),
    );
    return { name: result.model ?? this.modelName, versionId: result.modelVersionId! };
  }

  /** Variables for new model versions' serving containers. */
  private containerEnv(): { name: string; value: string }[] {
    const env: { name: string; value: string }[] = [];
    if (this.options.logUri) env.push({ name: LOG_URI_ENV, value: this.options.logUri });
    if (this.options.onErrorAnomaly === 'flag') env.push({ name: ON_ERROR_ANOMALY_ENV, value: 'flag' });
    return env;
  }

  /**
   * Container variables are fixed when a version is uploaded: say so when an existing version
   * (uploaded earlier, or by an environment sharing this parent model) ships logs elsewhere.
   */
  private checkLogUri(
    alias: string,
    env: { name?: string | null; value?: string | null }[] | null | undefined,
  ) {
    const had = env?.find((e) => e.name === LOG_URI_ENV)?.value || undefined;
    if (had === this.options.logUri) return;
    this.options.out?.err(
      `vertex: model version ${alias} of ${this.modelName} was uploaded with ${LOG_URI_ENV}=${had ?? '(unset)'}, so its containers ship logs ${had ? 'there' : 'nowhere'}, not to ${this.options.logUri ?? '(no logs: in the policy)'}. Give this environment its own endpoint.model to get versions with its logs: setting.`,
    );
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
      Object.entries((ep.labels ?? {}) as Record<string, string>).filter(([k]) => !k.startsWith(CANARY)),
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

/** Canary status as endpoint labels (values: lower-case letters, digits, `-`, at most 63 chars). */
export function canaryLabels(s: CanaryStatus): Record<string, string> {
  return {
    [`${CANARY}phase`]: s.phase,
    [`${CANARY}step`]: String(s.stepIndex),
    [`${CANARY}since`]: String(Date.parse(s.stepStartedAt)),
    ...(s.candidate ? { [`${CANARY}candidate`]: s.candidate } : {}),
    ...(s.stable ? { [`${CANARY}stable`]: s.stable } : {}),
    ...hashLabels(CANARY, s.candidateHash),
  };
}

export function readCanaryLabels(labels: Record<string, string>): CanaryStatus | undefined {
  const phase = labels[`${CANARY}phase`] as CanaryStatus['phase'] | undefined;
  const candidateHash = hashFromLabels(CANARY, labels);
  if (!phase || !candidateHash) return undefined;
  const stepIndex = Number(labels[`${CANARY}step`] ?? 0);
  return {
    candidateHash,
    ...(labels[`${CANARY}candidate`] ? { candidate: labels[`${CANARY}candidate`] } : {}),
    ...(labels[`${CANARY}stable`] ? { stable: labels[`${CANARY}stable`] } : {}),
    stepIndex,
    phase,
    stepStartedAt: new Date(Number(labels[`${CANARY}since`] ?? 0)).toISOString(),
    message: `${phase} at step ${stepIndex + 1}`,
  };
}
