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
  /**
   * LOCKSTEP_SHADOW_STORAGE_URI: a candidate's model directory; the container then answers with
   * the model at `storageUri` and mirrors every request to this one (a shadow step inside the
   * serving container, logged as shadow predictions).
   */
  shadowStorageUri?: string;
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
    shadowStorageUri: env.LOCKSTEP_SHADOW_STORAGE_URI || undefined,
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

async function modelDirOf(uri: string, where: string): Promise<string> {
  const dir = uri.startsWith('gs://')
    ? await downloadPrefix(uri)
    : path.resolve(uri.replace(/^file:\/\//, ''));
  if (!fs.existsSync(dir))
    throw new LockstepError(`${where}: no such directory "${uri}". Point it at the model directory.`);
  return dir;
}

export interface StorageUriSourceOptions {
  loader?: ModelLoader;
  deployedModelId?: string;
  /** A candidate's model directory to mirror every request to (LOCKSTEP_SHADOW_STORAGE_URI). */
  shadowStorageUri?: string;
}

/**
 * A source serving the one model at `storageUri` (gs:// prefix or local directory); with
 * `shadowStorageUri`, the candidate there sees every request in shadow (it answers none).
 */
export async function storageUriSource(
  storageUri: string,
  options: StorageUriSourceOptions = {},
): Promise<ModelSource> {
  const dir = await modelDirOf(storageUri, 'AIP_STORAGE_URI');
  const loader = options.loader ?? (await import('./model.ts')).loadServingModel;
  // The shadow worker loads models by directory: the default loader, or one that names its module.
  const worker =
    !options.loader || loader.ref ? { ...(loader.ref ? { loaderRef: loader.ref } : {}) } : undefined;
  const model = await loadWithInputChecks(loader, dir);
  const id = options.deployedModelId ?? '0';
  const source = staticSource([{ deployedModelId: id, modelVersionId: model.id, model, percent: 100 }]);
  if (!options.shadowStorageUri) return source;
  const candidateDir = await modelDirOf(options.shadowStorageUri, 'LOCKSTEP_SHADOW_STORAGE_URI');
  const candidateModel = await loadWithInputChecks(loader, candidateDir);
  const candidate = {
    deployedModelId: `${id}-shadow`,
    modelVersionId: candidateModel.id,
    model: candidateModel,
    ...(worker ? { modelDir: candidateDir, ...worker } : {}),
  };
  return { ...source, mirrorFor: (route) => (route.deployedModelId === id ? candidate : undefined) };
}
