/**
 * The Vertex AI model version an environment uploaded for a model hash: lockstep uploads each
 * hash once as a version of the policy's parent model with the alias `h-<hash12>`
 * (lib/endpoints/vertex.ts). `LOCKSTEP_VERTEX_ENDPOINT` points the client at a local server.
 */
import { createRequire } from 'node:module';
import { v1 } from '@google-cloud/aiplatform';
import { UsageError } from '../errors.ts';
import { vertexEndpointOverride } from './jobs-client.ts';

export interface VertexModelTarget {
  project: string;
  region: string;
  /** A parent model resource name or id. */
  model: string;
}

/** `projects/.../models/<id>@<version id>` of `hash`, or a one-line error naming the fix. */
export async function uploadedModelVersion(
  target: VertexModelTarget,
  hash: string,
  where: string,
): Promise<string> {
  const parent = `projects/${target.project}/locations/${target.region}`;
  const name = target.model.startsWith('projects/') ? target.model : `${parent}/models/${target.model}`;
  const models = new v1.ModelServiceClient(clientOptions(target.region));
  try {
    const [m] = await models.getModel({ name: `${name}@h-${hash.slice(0, 12)}` });
    return `${name}@${m.versionId}`;
  } catch (err) {
    if ([5, 404].includes((err as { code?: number }).code ?? -1)) {
      throw new UsageError(
        `${where}: model ${hash.slice(0, 12)} is not uploaded to ${name} "h-${hash.slice(0, 12)}". Promote it to the environment first (lockstep promote), which uploads it.`,
      );
    }
    throw err;
  } finally {
    await models.close();
  }
}

/** REST fallback; with LOCKSTEP_VERTEX_ENDPOINT a local server and a placeholder token. */
function clientOptions(region: string): ConstructorParameters<typeof v1.ModelServiceClient>[0] {
  const local = vertexEndpointOverride();
  if (!local) return { apiEndpoint: `${region}-aiplatform.googleapis.com`, fallback: true };
  const u = new URL(local);
  const gaxRequire = createRequire(createRequire(import.meta.url).resolve('google-gax'));
  const { OAuth2Client } = gaxRequire('google-auth-library');
  const authClient = new OAuth2Client();
  authClient.setCredentials({ access_token: 'local', expiry_date: Date.now() + 24 * 3_600_000 });
  return {
    apiEndpoint: u.hostname,
    port: Number(u.port),
    protocol: u.protocol.replace(/:$/, ''),
    fallback: true,
    authClient,
  } as ConstructorParameters<typeof v1.ModelServiceClient>[0];
}
