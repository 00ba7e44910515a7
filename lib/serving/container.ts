/**
 * The Vertex AI custom-container contract: the platform sets AIP_HTTP_PORT, AIP_HEALTH_ROUTE,
 * AIP_PREDICT_ROUTE and AIP_STORAGE_URI (a gs:// prefix, or a local directory, holding the model
 * directory) and AIP_DEPLOYED_MODEL_ID. In that mode the server serves the one model found there.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockstepError } from '../errors.ts';
import { toGcsError } from '../store/gcs-errors.ts';
import { listGsObjects, openGsPrefix } from '../store/gcs-objects.ts';
import { targetInside } from '../entry-path.ts';
import type { ModelLoader } from './model.ts';
import { loadWithInputChecks } from './checks.ts';
import { staticSource, type ModelSource } from './router.ts';

export interface AipEnvironment {
  httpPort?: number;
  healthRoute?: string;
  predictRoute?: string;
  storageUri?: string;
  deployedModelId?: string;
  endpointId?: string;
}

/** Reads the AIP_* variables (undefined when unset). */
export function readAipEnvironment(env: NodeJS.ProcessEnv = process.env): AipEnvironment {
  const port = env.AIP_HTTP_PORT ? Number(env.AIP_HTTP_PORT) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536)) {
    throw new LockstepError(`AIP_HTTP_PORT: not a port number "${env.AIP_HTTP_PORT}". Set it to e.g. 8080.`);
  }
  return {
    httpPort: port,
    healthRoute: env.AIP_HEALTH_ROUTE || undefined,
    predictRoute: env.AIP_PREDICT_ROUTE || undefined,
    storageUri: env.AIP_STORAGE_URI || undefined,
    deployedModelId: env.AIP_DEPLOYED_MODEL_ID || undefined,
    endpointId: env.AIP_ENDPOINT_ID || undefined,
  };
}

/** Copies every object under a gs:// prefix into a fresh temp directory and returns it. */
async function downloadPrefix(uri: string): Promise<string> {
  const prefix = await openGsPrefix(uri, { where: 'AIP_STORAGE_URI' });
  const files = await listGsObjects(prefix);
  if (files.length === 0)
    throw new LockstepError(`AIP_STORAGE_URI: no files under "${uri}". Upload the model directory there.`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-model-'));
  for (const { file, rel } of files) {
    const dest = targetInside(dir, rel, uri);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    try {
      await file.download({ destination: dest });
    } catch (err) {
      throw toGcsError(err, `gs://${prefix.loc.bucket}/${file.name}`, 'download');
    }
  }
  return dir;
}

/** A source serving the one model at `storageUri` (gs:// prefix or local directory). */
export async function storageUriSource(
  storageUri: string,
  options: { loader?: ModelLoader; deployedModelId?: string } = {},
): Promise<ModelSource> {
  const dir = storageUri.startsWith('gs://')
    ? await downloadPrefix(storageUri)
    : path.resolve(storageUri.replace(/^file:\/\//, ''));
  if (!fs.existsSync(dir))
    throw new LockstepError(
      `AIP_STORAGE_URI: no such directory "${storageUri}". Point it at the model directory.`,
    );
  const loader = options.loader ?? (await import('./model.ts')).loadServingModel;
  const model = await loadWithInputChecks(loader, dir);
  return staticSource([
    { deployedModelId: options.deployedModelId ?? '0', modelVersionId: model.id, model, percent: 100 },
  ]);
}
