/**
 * Model versions behind a Vertex AI endpoint: each model hash is uploaded once as a new version of
 * one parent model (version alias `h-<hash12>`, labels carrying the full hash, size and file
 * count), and a deployed version's labels give back the lockstep model ref.
 */
import type { v1 } from '@google-cloud/aiplatform';
import { UsageError } from '../errors.ts';
import { LOG_URI_ENV } from '../serving/ship.ts';
import { ON_ERROR_ANOMALY_ENV } from '../serving/checks.ts';
import { PATHS } from '../paths.ts';
import { imageDigestLabels } from '../image-ref.ts';
import type { ModelRef } from '../serving/endpoint.ts';
import { hashFromLabels, hashLabels } from './vertex-labels.ts';
import { awaitVertexOperation, isNotFound, wrapVertexError, type VertexCallOptions } from './vertex-calls.ts';
import type { VertexEndpointOptions, VertexTarget } from './vertex.ts';

/** What uploading and reading model versions needs of the endpoint. */
export interface ModelVersionHost {
  target: VertexTarget;
  options: VertexEndpointOptions & VertexCallOptions;
  models: InstanceType<typeof v1.ModelServiceClient>;
  /** `projects/<p>/locations/<r>`. */
  parent: string;
  /** The parent model's resource name. */
  modelName: string;
}

/** The lockstep model ref a model version's labels carry (undefined: not a lockstep version). */
export function modelRefFromLabels(labels: Record<string, string>): ModelRef | undefined {
  const hash = hashFromLabels('lockstep-', labels);
  if (!hash) return undefined;
  return {
    path: PATHS.model,
    hash,
    size: Number(labels['lockstep-size'] ?? 0),
    nfiles: Number(labels['lockstep-nfiles'] ?? 0),
    dir: true,
  };
}

/** The version of the parent model holding `hash`, uploading it (once per hash) if needed. */
export async function ensureModelVersion(
  host: ModelVersionHost,
  model: ModelRef,
): Promise<{ name: string; versionId: string }> {
  const { models, modelName, options, target } = host;
  // `h-<hash12>` names the version; when another model's hash shares those 12 characters
  // (its labels say so), this one goes by `h-<full hash>` instead.
  let alias = `h-${model.hash.slice(0, 12)}`;
  for (const candidate of [alias, `h-${model.hash}`]) {
    alias = candidate;
    let m;
    try {
      [m] = await models.getModel({ name: `${modelName}@${candidate}` });
    } catch (err) {
      if (!isNotFound(err)) throw wrapVertexError('getModel', err);
      break;
    }
    const held = hashFromLabels('lockstep-', (m.labels ?? {}) as Record<string, string>);
    if (held && held !== model.hash) continue;
    checkLogUri(host, candidate, m.containerSpec?.env);
    return { name: modelName, versionId: m.versionId! };
  }
  let parentExists = true;
  try {
    await models.getModel({ name: modelName });
  } catch (err) {
    if (!isNotFound(err)) throw wrapVertexError('getModel', err);
    parentExists = false;
  }
  if (!options.stageModel) {
    throw new UsageError(
      `vertex: no way to stage model ${model.hash.slice(0, 12)} for upload. Pass stageModel (a gs:// copy of the model directory).`,
    );
  }
  const artifactUri = await options.stageModel(model);
  const meta = await options.versionMetadata?.(model);
  const modelId = modelName.split('/').pop()!;
  const env = containerEnv(options);
  const result = await awaitVertexOperation<{ model?: string | null; modelVersionId?: string | null }>(
    options,
    'uploadModel',
    (o) =>
      models.uploadModel(
        {
          parent: host.parent,
          ...(parentExists ? { parentModel: modelName } : { modelId }),
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
              ...imageDigestLabels(target.image),
            },
            containerSpec: {
              imageUri: target.image,
              predictRoute: '/predict',
              healthRoute: '/health',
              ports: [{ containerPort: 8080 }],
              ...(env.length ? { env } : {}),
            },
          },
        },
        o,
      ),
  );
  return { name: result.model ?? modelName, versionId: result.modelVersionId! };
}

/** Variables for new model versions' serving containers. */
function containerEnv(options: VertexEndpointOptions): { name: string; value: string }[] {
  const env: { name: string; value: string }[] = [];
  if (options.logUri) env.push({ name: LOG_URI_ENV, value: options.logUri });
  if (options.onErrorAnomaly === 'flag') env.push({ name: ON_ERROR_ANOMALY_ENV, value: 'flag' });
  return env;
}

/**
 * Container variables are fixed when a version is uploaded: say so when an existing version
 * (uploaded earlier, or by an environment sharing this parent model) ships logs elsewhere.
 */
function checkLogUri(
  host: ModelVersionHost,
  alias: string,
  env: { name?: string | null; value?: string | null }[] | null | undefined,
) {
  const { logUri, out } = host.options;
  const had = env?.find((e) => e.name === LOG_URI_ENV)?.value || undefined;
  if (had === logUri) return;
  out?.err(
    `vertex: model version ${alias} of ${host.modelName} was uploaded with ${LOG_URI_ENV}=${had ?? '(unset)'}, so its containers ship logs ${had ? 'there' : 'nowhere'}, not to ${logUri ?? '(no logs: in the policy)'}. Give this environment its own endpoint.model to get versions with its logs: setting.`,
  );
}
