/**
 * Remote ingestion: lists the `.wav` objects under a `gs://bucket/prefix` and downloads them into
 * a staging directory (inside the ingest out), keeping their relative paths so that folder and
 * file-name labels still work. Credentials come from Application Default Credentials.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { parseGsUrl, toGcsError } from '../../lib/store/gcs-errors.ts';

export interface DownloadOptions {
  /** Storage API endpoint (tests, emulators; `STORAGE_EMULATOR_HOST` also works). */
  apiEndpoint?: string;
  projectId?: string;
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Downloads every `.wav` object under `url` into `dest` (`<dest>/<path under prefix>`); objects
 * already present with the same size are not fetched again. Returns the relative paths, sorted.
 */
export async function downloadPrefix(
  url: string,
  dest: string,
  options: DownloadOptions = {},
): Promise<string[]> {
  const where = 'params.yaml: data.path';
  const loc = parseGsUrl(url, where);
  const { Storage } = await import('@google-cloud/storage');
  const storage = new Storage({
    ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
    ...(options.projectId ? { projectId: options.projectId } : {}),
  });
  const bucket = storage.bucket(loc.bucket);
  let files;
  try {
    [files] = await bucket.getFiles({ prefix: loc.prefix ? `${loc.prefix}/` : undefined });
  } catch (err) {
    throw toGcsError(err, loc.url, 'list');
  }
  const wanted = files
    .filter((f) => /\.wav$/i.test(f.name))
    .map((f) => ({ file: f, rel: loc.prefix ? f.name.slice(loc.prefix.length + 1) : f.name }))
    .filter(({ rel }) => rel && !rel.split('/').includes('..'))
    .sort((a, b) => (a.rel < b.rel ? -1 : 1));
  const limit = pLimit(options.concurrency ?? 8);
  let done = 0;
  await Promise.all(
    wanted.map(({ file, rel }) =>
      limit(async () => {
        const target = path.join(dest, ...rel.split('/'));
        const size = Number(file.metadata.size ?? -1);
        const existing = await stat(target).catch(() => undefined);
        if (!existing || existing.size !== size) {
          await mkdir(path.dirname(target), { recursive: true });
          try {
            await file.download({ destination: target });
          } catch (err) {
            throw toGcsError(err, `gs://${loc.bucket}/${file.name}`, 'download');
          }
        }
        options.onProgress?.(++done, wanted.length);
      }),
    ),
  );
  return wanted.map((w) => w.rel);
}
