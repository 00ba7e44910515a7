/**
 * Opens the endpoint an environment's policy names (`promotion/<env>.yaml` `endpoint:`): the
 * local endpoint (embedded default) or a Vertex AI endpoint.
 */
import type { Repo } from '../repo.ts';
import type { Output } from '../output.ts';
import { readPolicy, type Policy } from '../environment/policy.ts';
import { predictionLogDir, PredictionLog } from '../serving/logs.ts';
import type { ModelLoader } from '../serving/model.ts';
import type { Endpoint, ModelRef } from '../serving/endpoint.ts';
import { UsageError } from '../errors.ts';
import { pinnedImage } from '../image-ref.ts';

export interface OpenEndpointOptions {
  out?: Output;
  /** Log in-process predictions under `.lockstep/logs/<env>/` (default true). */
  log?: boolean;
  loader?: ModelLoader;
  /** Vertex AI client options (tests point them at a local fake). */
  vertexClientOptions?: Record<string, unknown>;
}

/** The environment's policy and endpoint. */
export async function openEndpoint(
  repo: Repo,
  env: string,
  options: OpenEndpointOptions = {},
): Promise<{ policy: Policy; endpoint: Endpoint; image?: string }> {
  const policy = await readPolicy(repo.root, env);
  const target = policy.endpoint;
  if (target.kind === 'vertex') {
    // Model versions run the image by digest, never by a tag that can move under them.
    const image = pinnedImage(target.image, `promotion/${env}.yaml: endpoint.image`);
    const { VertexEndpoint } = await import('./vertex.ts');
    const { stageModelToGcs } = await import('./stage-model.ts');
    const { defaultRemote, defaultRemoteUrl } = await import('../store/remote-config.ts');
    const { parseGsUrl } = await import('../store/gcs-errors.ts');
    const { versionMetadataOf } = await import('./vertex-mirror.ts');
    // Vertex-served containers ship their prediction logs to a gs:// `logs:` (LOCKSTEP_LOG_URI).
    const logUri = policy.logs?.startsWith('gs://')
      ? parseGsUrl(policy.logs, `promotion/${env}.yaml: logs`).url
      : undefined;
    // Model files are staged next to the environment's (or the repository's) gs:// remote.
    const base = policy.remote ?? defaultRemoteUrl(repo);
    const stageModel = async (model: ModelRef) => {
      if (!base?.startsWith('gs://')) {
        throw new UsageError(
          `promotion/${env}.yaml: remote: no gs:// location to stage model files for Vertex AI "${base ?? ''}". Set remote: gs://bucket/prefix.`,
        );
      }
      const remote = await defaultRemote(repo).catch(() => undefined);
      return stageModelToGcs(repo, model, base, { remote });
    };
    return {
      policy,
      image,
      endpoint: new VertexEndpoint(
        { ...target, image },
        {
          clientOptions: options.vertexClientOptions,
          out: options.out,
          stageModel,
          logUri,
          onErrorAnomaly: policy.serving.on_error_anomaly,
          versionMetadata: (model) => versionMetadataOf(repo, model),
        },
      ),
    };
  }
  const { defaultRemote } = await import('../store/remote-config.ts');
  const { LocalEndpoint } = await import('./local.ts');
  const remote = await defaultRemote(repo).catch(() => undefined);
  const log = options.log === false ? undefined : new PredictionLog(predictionLogDir(repo.root, env));
  return {
    policy,
    endpoint: new LocalEndpoint(repo, env, {
      remote,
      log,
      loader: options.loader,
      out: options.out,
      onErrorAnomaly: policy.serving.on_error_anomaly,
    }),
  };
}
