/**
 * Staging a model for Vertex AI: Vertex copies a model version's files from its `artifactUri`
 * (a gs:// prefix holding the plain model directory) and hands them to the serving container as
 * AIP_STORAGE_URI. The directory is checked out by hash from the store and uploaded once to
 * `<base>/serving/<hash>/`; a marker object written last makes a finished upload recognizable.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import { LockstepError } from '../errors.ts';
import { materializeModel } from '../serving/model-store.ts';
import type { ModelRef } from '../serving/endpoint.ts';

const MARKER = '.lockstep-complete';

export interface StageModelOptions {
  /** Store remote to pull model objects from when the cache lacks them. */
  remote?: Remote;
  /** @google-cloud/storage options (tests point apiEndpoint at a local fake). */
  storageOptions?: Record<string, unknown>;
}

function listFiles(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, r));
    else if (e.isFile()) out.push(r);
  }
  return out.sort();
}

/** Uploads the model directory to `<baseUri>/serving/<hash>/` (once) and returns that gs:// URI. */
export async function stageModelToGcs(
  repo: Repo,
  model: ModelRef,
  baseUri: string,
  options: StageModelOptions = {},
): Promise<string> {
  const m = /^gs:\/\/([^/]+)\/?(.*?)\/?$/.exec(baseUri);
  if (!m) {
    throw new LockstepError(
      `remote: not a gs:// URI "${baseUri}". Set remote: gs://bucket/prefix in promotion/<env>.yaml so Vertex AI can read the model.`,
    );
  }
  const [, bucketName, basePrefix] = m;
  const prefix = `${basePrefix ? basePrefix + '/' : ''}serving/${model.hash}`;
  const uri = `gs://${bucketName}/${prefix}`;
  const { Storage } = await import('@google-cloud/storage');
  const { createStorage } = await import('../store/gcs-client.ts');
  const bucket = createStorage(Storage, { storageOptions: options.storageOptions }).bucket(bucketName);
  const [done] = await bucket.file(`${prefix}/${MARKER}`).exists();
  if (done) return uri;
  const dir = await materializeModel(repo, model, { remote: options.remote });
  for (const rel of listFiles(dir)) {
    await bucket.upload(path.join(dir, ...rel.split('/')), {
      destination: `${prefix}/${rel}`,
      resumable: false,
    });
  }
  await bucket.file(`${prefix}/${MARKER}`).save(model.hash, { resumable: false });
  return uri;
}
