/**
 * Vertex AI Experiments through the Metadata service, the way the Python SDK's
 * `aiplatform.init(experiment=...)`, `start_run`, `log_params` and `log_metrics` write it:
 * - the default metadata store `projects/P/locations/L/metadataStores/default` (created once);
 * - the experiment: a context with id `<experiment>`, schema `system.Experiment`, metadata
 *   `{experiment_deleted: false}` (the console filters on it);
 * - a run: a context with id `<experiment>-<run>`, schema `system.ExperimentRun`, metadata
 *   `{_params: {...}, _metrics: {...}, _state: "COMPLETE"}`, added as a child of the experiment.
 *
 * Per-epoch curves: the SDK's `log_time_series_metrics` writes to a Vertex AI TensorBoard
 * instance (a billed resource the project must create first). We keep them in the Metadata
 * store instead, as one `system.Metrics` artifact per run (`<experiment>-<run>-curves`) whose
 * metadata holds one list per metric, indexed by epoch, attached to the run context: free,
 * in the same store the compare view reads, and written in one call.
 *
 * Runs are named after what `lockstep exp show` lists (the commit of a pipeline run, the
 * experiment's name, the tune trial's name), so one run per name: writing it again updates it.
 * Without `vertex.experiment` in `.lockstep/config.yaml` nothing is called.
 */
import { createHash } from 'node:crypto';
import { v1, helpers, protos } from '@google-cloud/aiplatform';
import { LockstepError } from '../errors.ts';
import type { VertexConfig } from '../config.ts';

/** One run as the console shows it. */
export interface ExperimentRunRecord {
  /** The run's name (sanitized into a context id below the experiment). */
  run: string;
  params: Record<string, string | number | boolean>;
  metrics: Record<string, number>;
  /** Per-epoch values, one list per metric (train's history.json). */
  curves?: Record<string, number[]>;
  state?: 'COMPLETE' | 'FAILED';
}

export interface ExperimentLoggerOptions {
  /** Extra client options (tests point them at a local fake). */
  clientOptions?: Record<string, unknown>;
}

/**
 * Client options used when a caller passes none: the CLI runs in-process in tests, which point
 * every Vertex AI client at a local fake this way. Production leaves it empty.
 */
export const vertexClientDefaults: { options?: Record<string, unknown> } = {};

type MetadataClient = InstanceType<typeof v1.MetadataServiceClient>;
type Struct = protos.google.protobuf.IStruct;

const KEY = '.lockstep/config.yaml: vertex';
const isNotFound = (err: unknown) => [5, 404].includes((err as { code?: number }).code ?? -1);
const isConflict = (err: unknown) => [6, 409].includes((err as { code?: number }).code ?? -1);

/**
 * A Metadata context id: lower-case letters, digits and `-`, at most 128 characters. A longer
 * name keeps its head and ends in a hash of the whole, so two long run names (or a run of a
 * long experiment and the experiment itself) never share a context.
 */
export function contextId(name: string): string {
  const id =
    name
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'run';
  if (id.length <= 128) return id;
  const tag = createHash('sha256').update(id).digest('hex').slice(0, 12);
  return `${id.slice(0, 115).replace(/-+$/, '')}-${tag}`;
}

/** Params as the SDK logs them: dotted keys, scalar values (lists as their JSON text). */
export function flattenParams(
  value: unknown,
  prefix = '',
  out: Record<string, string | number | boolean> = {},
): Record<string, string | number | boolean> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenParams(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') {
    out[prefix] = value;
  } else if (value !== undefined && value !== null) out[prefix] = JSON.stringify(value);
  return out;
}

function toStruct(obj: Record<string, unknown>): Struct {
  return (helpers.toValue(obj) as { structValue: Struct }).structValue;
}

type Value = protos.google.protobuf.IValue;

function fromValue(v: Value | null | undefined): unknown {
  if (!v) return null;
  if (v.structValue) return fromStruct(v.structValue);
  if (v.listValue) return (v.listValue.values ?? []).map(fromValue);
  if (v.numberValue !== undefined && v.numberValue !== null) return v.numberValue;
  if (v.stringValue !== undefined && v.stringValue !== null) return v.stringValue;
  if (v.boolValue !== undefined && v.boolValue !== null) return v.boolValue;
  return null;
}

/** A Struct as the client returns it (`{fields: {k: Value}}`) → plain JSON. */
function fromStruct(s: Struct | null | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(s?.fields ?? {}).map(([k, v]) => [k, fromValue(v)]));
}

/** Writes runs of one Vertex AI experiment; `close()` when done. */
export class ExperimentLogger {
  private readonly client: MetadataClient;
  readonly store: string;
  readonly experiment: string;
  private ready: Promise<void> | undefined;

  constructor(config: VertexConfig & { experiment: string }, options: ExperimentLoggerOptions = {}) {
    this.client = new v1.MetadataServiceClient({
      apiEndpoint: `${config.region}-aiplatform.googleapis.com`,
      ...(options.clientOptions ?? vertexClientDefaults.options),
    });
    this.store = `projects/${config.project}/locations/${config.region}/metadataStores/default`;
    this.experiment = contextId(config.experiment);
  }

  get experimentName(): string {
    return `${this.store}/contexts/${this.experiment}`;
  }

  /** The console's run name (context id) for `run`. */
  runId(run: string): string {
    return contextId(`${this.experiment}-${run}`);
  }

  close(): Promise<void> {
    return this.client.close();
  }

  private wrap(what: string, err: unknown): LockstepError {
    if (err instanceof LockstepError) return err;
    const e = err as { code?: number; message?: string };
    const msg = (e.message ?? String(err)).split('\n')[0];
    const fix = [7, 403, 16, 401].includes(e.code ?? -1)
      ? 'Grant the caller roles/aiplatform.user on the project, or remove vertex.experiment'
      : 'Check vertex.project and vertex.region, or remove vertex.experiment';
    return new LockstepError(`${KEY}: Vertex AI Experiments ${what} failed "${msg}". ${fix}.`, {
      cause: err,
    });
  }

  /** The default metadata store and the experiment context, each created when missing. */
  private ensureExperiment(): Promise<void> {
    this.ready ??= (async () => {
      try {
        await this.client.getMetadataStore({ name: this.store });
      } catch (err) {
        if (!isNotFound(err)) throw this.wrap('getMetadataStore', err);
        const parent = this.store.replace(/\/metadataStores\/default$/, '');
        try {
          const [op] = await this.client.createMetadataStore({
            parent,
            metadataStoreId: 'default',
            metadataStore: { description: 'Vertex AI Experiments of lockstep runs' },
          });
          await op.promise();
        } catch (e) {
          if (!isConflict(e)) throw this.wrap('createMetadataStore', e);
        }
      }
      await this.ensureContext(this.experiment, {
        displayName: this.experiment,
        schemaTitle: 'system.Experiment',
        schemaVersion: '0.0.1',
        metadata: toStruct({ experiment_deleted: false }),
      });
    })();
    return this.ready;
  }

  /** Gets a context of the store, creating it when missing; returns its metadata. */
  private async ensureContext(
    id: string,
    context: Record<string, unknown>,
  ): Promise<{ created: boolean; metadata: Record<string, unknown> }> {
    const name = `${this.store}/contexts/${id}`;
    try {
      const [found] = await this.client.getContext({ name });
      return { created: false, metadata: fromStruct(found.metadata) };
    } catch (err) {
      if (!isNotFound(err)) throw this.wrap('getContext', err);
    }
    try {
      await this.client.createContext({ parent: this.store, contextId: id, context });
      return { created: true, metadata: fromStruct(context.metadata as Struct) };
    } catch (err) {
      // Another process created it between our get and create: use theirs.
      if (!isConflict(err)) throw this.wrap('createContext', err);
      const [found] = await this.client.getContext({ name });
      return { created: false, metadata: fromStruct(found.metadata) };
    }
  }

  /**
   * Writes one run: its context (created or updated) with params, final metrics and state, a
   * child of the experiment, and its per-epoch curves as a `system.Metrics` artifact.
   * Returns the run's context resource name.
   */
  async logRun(record: ExperimentRunRecord): Promise<string> {
    await this.ensureExperiment();
    const id = this.runId(record.run);
    const name = `${this.store}/contexts/${id}`;
    const metadata = {
      _params: record.params,
      _metrics: record.metrics,
      _state: record.state ?? 'COMPLETE',
    };
    const { created, metadata: had } = await this.ensureContext(id, {
      displayName: record.run.slice(0, 128),
      schemaTitle: 'system.ExperimentRun',
      schemaVersion: '0.0.1',
      metadata: toStruct(metadata),
    });
    if (created) {
      try {
        await this.client.addContextChildren({ context: this.experimentName, childContexts: [name] });
      } catch (err) {
        throw this.wrap('addContextChildren', err);
      }
    } else {
      // log_params / log_metrics merge into what the run holds (a rerun of the same name).
      const merged = {
        ...had,
        _params: { ...((had._params as object) ?? {}), ...record.params },
        _metrics: { ...((had._metrics as object) ?? {}), ...record.metrics },
        _state: metadata._state,
      };
      try {
        await this.client.updateContext({
          context: { name, metadata: toStruct(merged) },
          updateMask: { paths: ['metadata'] },
        });
      } catch (err) {
        throw this.wrap('updateContext', err);
      }
    }
    if (record.curves && Object.keys(record.curves).length > 0) await this.logCurves(id, record.curves);
    return name;
  }

  private async logCurves(runId: string, curves: Record<string, number[]>): Promise<void> {
    const artifactId = contextId(`${runId}-curves`);
    const artifactName = `${this.store}/artifacts/${artifactId}`;
    const epochs = Math.max(...Object.values(curves).map((c) => c.length));
    const metadata = toStruct({ epochs, ...curves });
    try {
      await this.client.createArtifact({
        parent: this.store,
        artifactId,
        artifact: {
          displayName: `${runId} per-epoch metrics`,
          schemaTitle: 'system.Metrics',
          schemaVersion: '0.0.1',
          metadata,
        },
      });
    } catch (err) {
      if (!isConflict(err)) throw this.wrap('createArtifact', err);
      try {
        await this.client.updateArtifact({
          artifact: { name: artifactName, metadata },
          updateMask: { paths: ['metadata'] },
        });
      } catch (e) {
        throw this.wrap('updateArtifact', e);
      }
    }
    try {
      await this.client.addContextArtifactsAndExecutions({
        context: `${this.store}/contexts/${runId}`,
        artifacts: [artifactName],
      });
    } catch (err) {
      throw this.wrap('addContextArtifactsAndExecutions', err);
    }
  }
}

/**
 * The logger for the repository's `vertex` config, or undefined when no experiment is
 * configured (offline: nothing is called).
 */
export function experimentLogger(
  config: VertexConfig | undefined,
  options: ExperimentLoggerOptions = {},
): ExperimentLogger | undefined {
  if (!config?.experiment) return undefined;
  return new ExperimentLogger({ ...config, experiment: config.experiment }, options);
}
