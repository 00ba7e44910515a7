/**
 * Plain object access under a `gs://bucket/prefix` for the places that read or write ordinary
 * files in Cloud Storage (remote ingestion, shipped prediction logs, batch prediction, the
 * serving container's model): open the bucket through Application Default Credentials and list
 * the objects under a prefix with their paths relative to it. Client errors become one-line
 * lockstep errors naming the URL (see gcs-errors.ts).
 */
import type { Bucket, File, StorageOptions } from '@google-cloud/storage';
import { parseGsUrl, toGcsError, type GsLocation } from './gcs-errors.ts';
import { parseEntryPaths, type EntryPath } from '../entry-path.ts';
import { createStorage } from './gcs-client.ts';

export interface GsOptions {
  /** Storage API endpoint (tests, emulators; `STORAGE_EMULATOR_HOST` also works). */
  apiEndpoint?: string;
  projectId?: string;
  /** Extra client options (tests pass a retry policy or an auth client). */
  storageOptions?: StorageOptions;
  /** What the URL came from, for errors (e.g. `--input`, `params.yaml: data.path`). */
  where?: string;
}

export interface GsObject {
  file: File;
  /** Full object name. */
  name: string;
  /** Name relative to the prefix, with `/` separators (checked: callers join it onto a directory). */
  rel: EntryPath;
  /** Bytes (-1 when the listing did not say). */
  size: number;
}

export interface GsPrefix {
  loc: GsLocation;
  bucket: Bucket;
  /** Object name for a path relative to the prefix. */
  name(rel: string): string;
}

/** Parses `url` and opens its bucket. */
export async function openGsPrefix(url: string, options: GsOptions = {}): Promise<GsPrefix> {
  const loc = parseGsUrl(url, options.where);
  const { Storage } = await import('@google-cloud/storage');
  const storage = createStorage(Storage, {
    apiEndpoint: options.apiEndpoint,
    projectId: options.projectId,
    storageOptions: options.storageOptions,
  });
  return {
    loc,
    bucket: storage.bucket(loc.bucket),
    name: (rel) => (loc.prefix ? `${loc.prefix}/${rel}` : rel),
  };
}

/**
 * Every object under the prefix (recursively) that `filter` keeps, sorted by relative path.
 * Folder placeholders (names ending in `/`) are left out. Object names are untrusted and land on
 * disk: a kept name that fails the path rules of `entry-path.ts` (`..`, absolute, backslash,
 * control characters, two names differing only by case, ...) is an IntegrityError naming it.
 */
export async function listGsObjects(
  prefix: GsPrefix,
  filter: (rel: string) => boolean = () => true,
): Promise<GsObject[]> {
  const { loc, bucket } = prefix;
  let files: File[];
  try {
    [files] = await bucket.getFiles({ prefix: loc.prefix ? `${loc.prefix}/` : undefined });
  } catch (err) {
    throw toGcsError(err, loc.url, 'list');
  }
  const objects = files
    .map((file) => ({
      file,
      name: file.name,
      rel: loc.prefix ? file.name.slice(loc.prefix.length + 1) : file.name,
      size: file.metadata.size === undefined ? -1 : Number(file.metadata.size),
    }))
    .filter(({ rel }) => rel && !rel.endsWith('/') && filter(rel))
    .sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  parseEntryPaths(
    objects.map((o) => o.rel),
    loc.url,
  );
  return objects as Array<(typeof objects)[number] & { rel: EntryPath }>;
}
