/**
 * Remote ingestion: lists the `.wav` objects under a `gs://bucket/prefix` and downloads them into
 * a staging directory (inside the ingest out), keeping their relative paths so that folder and
 * file-name labels still work. Credentials come from Application Default Credentials.
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { toGcsError } from '../../lib/store/gcs-errors.ts';
import { listGsObjects, openGsPrefix } from '../../lib/store/gcs-objects.ts';
import { targetInside } from '../../lib/entry-path.ts';

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
  const prefix = await openGsPrefix(url, { ...options, where: 'params.yaml: data.path' });
  const wanted = await listGsObjects(prefix, (rel) => /\.wav$/i.test(rel));
  const limit = pLimit(options.concurrency ?? 8);
  let done = 0;
  await Promise.all(
    wanted.map(({ file, rel, size }) =>
      limit(async () => {
        const target = targetInside(dest, rel, url);
        const existing = await stat(target).catch(() => undefined);
        if (!existing || existing.size !== size) {
          await mkdir(path.dirname(target), { recursive: true });
          try {
            await file.download({ destination: target });
          } catch (err) {
            throw toGcsError(err, `gs://${prefix.loc.bucket}/${file.name}`, 'download');
          }
        }
        options.onProgress?.(++done, wanted.length);
      }),
    ),
  );
  return wanted.map((w) => w.rel);
}
