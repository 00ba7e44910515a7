/**
 * `lockstep endpoint configure --env <env>`: makes a Vertex AI endpoint's platform settings match
 * `promotion/<env>.yaml`: request-response logging to BigQuery (`endpoint.request_logging`) and
 * the Model Monitoring job (`monitoring.vertex`, with the training statistics staged as its skew
 * baseline). Everything that can be refused locally (policy, remote, reference) is checked
 * before the first call, so a bad input changes nothing. Idempotent: a second run calls no
 * update.
 */
import { createHash } from 'node:crypto';
import { readPolicy } from '../environment/policy.ts';
import { UsageError, LockstepError } from '../errors.ts';
import type { Output } from '../output.ts';
import type { Repo } from '../repo.ts';
import { loadReference } from '../monitoring/reference.ts';
import { openGsPrefix, type GsOptions } from '../store/gcs-objects.ts';
import { defaultRemote, defaultRemoteUrl } from '../store/remote-config.ts';
import {
  baselineRows,
  noDeployedModel,
  reconcileMonitoringJob,
  type MonitoringPlan,
} from './vertex-monitoring.ts';
import { VertexEndpoint } from './vertex.ts';

export interface ConfigureOptions {
  vertexClientOptions?: Record<string, unknown>;
  gs?: GsOptions;
  dry?: boolean;
  out?: Output;
}

export interface ConfigureResult {
  requestLogging: 'changed' | 'unchanged' | 'planned';
  monitoring: MonitoringPlan;
  baselineUri?: string;
}

/** Stages the baseline JSONL (content-addressed name, written once); returns its gs:// URI. */
async function stageBaseline(base: string, env: string, text: string, gs: GsOptions, dry?: boolean) {
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 12);
  const rel = `monitoring/${env}/training-${hash}.jsonl`;
  const prefix = await openGsPrefix(base, { ...gs, where: `promotion/${env}.yaml: remote` });
  const uri = `gs://${prefix.loc.bucket}/${prefix.name(rel)}`;
  if (dry) return uri;
  const file = prefix.bucket.file(prefix.name(rel));
  try {
    const [exists] = await file.exists();
    if (!exists) await file.save(text, { contentType: 'application/jsonl', resumable: false });
  } catch (err) {
    throw new LockstepError(
      `promotion/${env}.yaml: remote: cannot stage the monitoring baseline ${uri} "${(err as Error).message.split('\n')[0]}". Check the bucket and your permissions.`,
      { cause: err },
    );
  }
  return uri;
}

export async function configureVertexEndpoint(
  repo: Repo,
  env: string,
  options: ConfigureOptions = {},
): Promise<ConfigureResult> {
  const policy = await readPolicy(repo.root, env);
  const target = policy.endpoint;
  if (target.kind !== 'vertex')
    throw new UsageError(
      `promotion/${env}.yaml: endpoint.kind: "${target.kind}" has no Vertex AI settings. lockstep monitor covers the local endpoint.`,
    );
  const monitoring = policy.monitoring?.vertex;
  // Inputs first: nothing is called on Vertex AI until they are all good.
  let baselineText: string | undefined;
  let featureCount = 0;
  let base: string | undefined;
  if (monitoring) {
    base = policy.remote ?? defaultRemoteUrl(repo);
    if (!base?.startsWith('gs://'))
      throw new UsageError(
        `promotion/${env}.yaml: remote: monitoring.vertex needs a gs:// location for its skew baseline "${base ?? ''}". Set remote: gs://bucket/prefix.`,
      );
    const remote = await defaultRemote(repo).catch(() => undefined);
    const { reference } = await loadReference(repo, env, { remote });
    featureCount = reference.featureNames.length;
    baselineText = baselineRows(reference)
      .map((r) => JSON.stringify(r))
      .join('\n');
    baselineText += '\n';
  }
  const endpoint = new VertexEndpoint(target, {
    clientOptions: options.vertexClientOptions,
    out: options.out,
  });
  try {
    // configure (above all --dry) never creates the endpoint a deploy would.
    const name = await endpoint.resolveEndpoint({ create: false });
    const described = await endpoint.describe();
    // Before the first change: a monitoring job cannot be made without a deployed model.
    if (monitoring && described.deployedModels.length === 0) throw noDeployedModel(env, name);
    const logging = target.request_logging
      ? { table: target.request_logging.table, samplingRate: target.request_logging.sampling_rate }
      : undefined;
    const requestLogging = options.dry
      ? 'planned'
      : (await endpoint.setRequestLogging(logging))
        ? 'changed'
        : 'unchanged';
    const baselineUri =
      monitoring && base
        ? await stageBaseline(base, env, baselineText!, options.gs ?? {}, options.dry)
        : undefined;
    const plan = await reconcileMonitoringJob(
      {
        parent: `projects/${target.project}/locations/${target.region}`,
        endpoint: name,
        env,
        deployedModelIds: described.deployedModels.map((d) => d.id),
        baselineUri,
        featureCount,
      },
      monitoring,
      { clientOptions: options.vertexClientOptions, dry: options.dry },
    );
    return { requestLogging, monitoring: plan, ...(baselineUri ? { baselineUri } : {}) };
  } finally {
    await endpoint.close();
  }
}
