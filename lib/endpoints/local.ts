/**
 * The local endpoint (embedded default): several deployed models and a traffic split, kept in
 * `.lockstep/endpoints/<env>.json`. `lockstep serve --env <env>` serves it over HTTP and follows
 * changes to the file; `predict` here runs in-process with the same code.
 */
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import type { Output } from '../output.ts';
import { LockstepError, UsageError } from '../errors.ts';
import { ModelCache, materializeModel } from '../serving/model-store.ts';
import { LocalEndpointSource } from '../serving/local-source.ts';
import { Predictor, type PredictLimits } from '../serving/predict.ts';
import type { ModelLoader } from '../serving/model.ts';
import type { PredictionLog } from '../serving/logs.ts';
import {
  endpointStatePath,
  readEndpointState,
  writeEndpointState,
  type EndpointState,
} from '../serving/endpoint-state.ts';
import type { OnErrorAnomaly } from '../validation/clip.ts';
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

export interface LocalEndpointOptions {
  /** Model loader (default: `lib/ml/model.ts` through `loadServingModel`). */
  loader?: ModelLoader;
  /** Remote to pull model objects from when the cache lacks them. */
  remote?: Remote;
  /** Prediction log for `predict` (default: none). */
  log?: PredictionLog;
  limits?: PredictLimits;
  /** Audio with an error anomaly: `reject` (default) or `flag` (the policy's `serving.on_error_anomaly`). */
  onErrorAnomaly?: OnErrorAnomaly;
  out?: Output;
}

export class LocalEndpoint implements Endpoint {
  readonly kind = 'local' as const;
  readonly env: string;
  readonly file: string;
  private readonly repo: Repo;
  private readonly options: LocalEndpointOptions;
  private readonly cache: ModelCache;
  private source: LocalEndpointSource | undefined;

  constructor(repo: Repo, env: string, options: LocalEndpointOptions = {}) {
    this.repo = repo;
    this.env = env;
    this.options = options;
    this.cache = new ModelCache(options.loader);
    this.file = endpointStatePath(repo.root, env);
  }

  private read(): EndpointState {
    return readEndpointState(this.file, this.env);
  }

  async deploy(model: ModelRef, percent: number): Promise<DeployedModel> {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
      throw new UsageError(`percent: not a whole percentage 0..100 "${percent}". Pass e.g. 10.`);
    }
    const state = this.read();
    const existing = state.deployedModels.find((d) => d.model.hash === model.hash);
    if (existing) return existing;
    // Like Vertex, a deployment that cannot start its model fails before taking traffic.
    const dir = await materializeModel(this.repo, model, {
      remote: this.options.remote,
      out: this.options.out,
    });
    try {
      await this.cache.load(model.hash, dir);
    } catch (err) {
      throw new LockstepError(
        `${dir}: model failed to load (${(err as Error).message.split('\n')[0]}). Check the model directory pinned by the lockfile.`,
        { cause: err },
      );
    }
    const id = String(state.nextId);
    const deployed: DeployedModel = { id, model: stripPath(model), deployedAt: new Date().toISOString() };
    state.nextId++;
    state.deployedModels.push(deployed);
    state.trafficSplit =
      state.deployedModels.length === 1 ? { [id]: 100 } : splitWithNew(state.trafficSplit, id, percent);
    await writeEndpointState(this.file, state);
    return deployed;
  }

  async setTraffic(split: TrafficSplit): Promise<void> {
    const state = this.read();
    const ids = state.deployedModels.map((d) => d.id);
    const full: TrafficSplit = Object.fromEntries(ids.map((id) => [id, split[id] ?? 0]));
    const problem = checkSplit(split, ids) ?? checkSplit(full, ids);
    if (problem)
      throw new UsageError(
        `${this.file}: trafficSplit: ${problem}. Give every deployed model a share summing to 100.`,
      );
    if (JSON.stringify(full) === JSON.stringify(state.trafficSplit)) return;
    state.trafficSplit = full;
    await writeEndpointState(this.file, state);
  }

  async undeploy(deployedModelId: string): Promise<void> {
    const state = this.read();
    if (!state.deployedModels.some((d) => d.id === deployedModelId)) return;
    if ((state.trafficSplit[deployedModelId] ?? 0) > 0) {
      throw new UsageError(
        `${this.file}: deployed model "${deployedModelId}" still has ${state.trafficSplit[deployedModelId]}% of the traffic. Move its traffic first (setTraffic).`,
      );
    }
    state.deployedModels = state.deployedModels.filter((d) => d.id !== deployedModelId);
    delete state.trafficSplit[deployedModelId];
    await writeEndpointState(this.file, state);
  }

  async describe(): Promise<EndpointDescription> {
    const state = this.read();
    return {
      kind: 'local',
      name: this.env,
      deployedModels: state.deployedModels,
      trafficSplit: state.trafficSplit,
      ...(state.canary ? { canary: state.canary } : {}),
    };
  }

  async predict(instances: PredictInstance[]): Promise<PredictResponse> {
    this.source ??= new LocalEndpointSource(this.repo, this.env, {
      cache: this.cache,
      remote: this.options.remote,
      out: this.options.out,
    });
    await this.source.refresh();
    const predictor = new Predictor(this.source, {
      env: this.env,
      log: this.options.log,
      limits: this.options.limits,
      onErrorAnomaly: this.options.onErrorAnomaly,
    });
    try {
      return predictor.predict({ instances });
    } finally {
      // A one-shot prediction in a shadow step waits for the candidate's (logged) prediction,
      // which the worker bounds by its timeouts, then stops the worker.
      await predictor.shadow.settled();
      await predictor.shadow.close();
    }
  }

  /** Writes queued prediction log lines now (before a short-lived process exits). */
  flush(): void {
    this.options.log?.flush();
  }

  async writeCanaryStatus(status: CanaryStatus | undefined): Promise<void> {
    const state = this.read();
    if (JSON.stringify(state.canary) === JSON.stringify(status)) return;
    if (status) state.canary = status;
    else delete state.canary;
    await writeEndpointState(this.file, state);
  }
}

function stripPath(model: ModelRef): ModelRef {
  const { path, hash, size, nfiles, dir, commit } = model;
  return { path, hash, size, nfiles, ...(dir === undefined ? {} : { dir }), ...(commit ? { commit } : {}) };
}
