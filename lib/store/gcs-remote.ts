/**
 * Google Cloud Storage remote: `gs://bucket/prefix` holding the cache layout
 * (`<prefix>/sha256/ab/cdef...`). Credentials come from Application Default Credentials (Workload
 * Identity Federation in Actions); they never appear in `url` or in error messages.
 *
 * Integrity end to end: uploads declare the file's crc32c and md5 so the service rejects damaged
 * bytes, and the stored object's hashes are checked again from the response; downloads hash the
 * bytes as they arrive and compare with `x-goog-hash`. Requests retry with exponential backoff on
 * 429, 5xx and dropped connections (objects are content-addressed and uploads carry
 * `ifGenerationMatch=0`, so every retry is safe; a 412 means the object is already there). Large
 * files use resumable uploads; an interrupted download continues with a Range request.
 */
import { getMaxListeners, setMaxListeners } from 'node:events';
import fsp from 'node:fs/promises';
import pLimit from 'p-limit';
import { IdempotencyStrategy, Storage, type Bucket, type StorageOptions } from '@google-cloud/storage';
import { MediaClient, createStorage } from './gcs-client.ts';
import { uploadObject, type UploadTarget } from './gcs-upload.ts';
import { IntegrityError, formatProblem } from '../errors.ts';
import type { Oid } from '../types.ts';
import {
  objectKey,
  type OpenRemoteOptions,
  type PutOptions,
  type Remote,
  type DownloadedBytes,
  type RemoteObjectInfo,
  type TransferOptions,
} from './remote.ts';
import { parseGsUrl, statusOf, toGcsError } from './gcs-errors.ts';
import { hasObjects, listPage, type ListingSource } from './gcs-listing.ts';
import { UploadSessions, defaultSessionDir } from './gcs-sessions.ts';
import { downloadOnce, sleep, type DownloadSource, type ObjectHashes } from './gcs-download.ts';

export interface GcsRemoteOptions extends OpenRemoteOptions {
  /** Files of at least this many bytes go through resumable uploads (default 8 MiB). */
  resumableThreshold?: number;
  /** Retries per request on 429, 5xx and dropped connections (default 6). */
  maxRetries?: number;
  /** Longest single backoff wait in seconds (default 32); tests make it small. */
  maxRetryDelay?: number;
  /** Extra whole-object attempts after a checksum mismatch (default 2). */
  integrityRetries?: number;
  /** Chunk size of resumable uploads, a multiple of 256 KiB (default 8 MiB). Each chunk is held in
   * memory so a dropped connection resends only from the service's offset. */
  resumableChunkSize?: number;
  /** A download (or a small file's upload) whose connection is silent this long is dropped and
   * continued or retried (default 60 s). */
  stallTimeout?: number;
  /** Where resumable-upload session URIs are kept between runs (default: a per-user directory
   * under the system temp dir); `false` disables resuming across runs. */
  sessionDir?: string | false;
  /** `has()` asks per object up to this many ids, and lists above it (default 2 x concurrency). */
  perObjectThreshold?: number;
  /** An auth client to use instead of Application Default Credentials (tests). */
  authClient?: StorageOptions['authClient'];
  /** Send credentials to a custom `apiEndpoint` too (the client skips auth there by default). */
  useAuthWithCustomEndpoint?: boolean;
  /** Service-account key used to sign URLs instead of Application Default Credentials (tests). */
  credentials?: StorageOptions['credentials'];
}

export class GcsRemote implements Remote {
  readonly url: string;
  readonly bucketName: string;
  /** Object-name prefix ending in '/', or '' for the bucket root. */
  readonly root: string;
  private readonly storage: Storage;
  private readonly bucket: Bucket;
  private readonly concurrency: number;
  private readonly resumableThreshold: number;
  private readonly maxRetries: number;
  private readonly maxRetryDelayMs: number;
  private readonly integrityRetries: number;
  private readonly perObjectThreshold: number;
  private readonly resumableChunkSize: number;
  private readonly stallTimeoutMs: number;
  private readonly sessions?: UploadSessions;
  private readonly media: MediaClient;
  /** Bounds the requests `put`/`get` have in flight even when callers fan out without a pool. */
  private readonly limit: ReturnType<typeof pLimit>;

  constructor(url: string, options: GcsRemoteOptions = {}) {
    const location = parseGsUrl(url);
    this.url = location.url;
    this.bucketName = location.bucket;
    this.root = location.prefix ? `${location.prefix}/` : '';
    this.concurrency = Math.max(1, options.concurrency ?? 16);
    this.resumableThreshold = options.resumableThreshold ?? 8 * 1024 * 1024;
    this.maxRetries = options.maxRetries ?? 6;
    this.maxRetryDelayMs = (options.maxRetryDelay ?? 32) * 1000;
    this.integrityRetries = options.integrityRetries ?? 2;
    this.perObjectThreshold = options.perObjectThreshold ?? 2 * this.concurrency;
    const quantum = 256 * 1024;
    this.resumableChunkSize = Math.max(
      quantum,
      Math.round((options.resumableChunkSize ?? 8 * 1024 * 1024) / quantum) * quantum,
    );
    this.stallTimeoutMs = (options.stallTimeout ?? 60) * 1000;
    if (options.sessionDir !== false)
      this.sessions = new UploadSessions(options.sessionDir ?? defaultSessionDir());
    this.limit = pLimit(this.concurrency);
    this.storage = createStorage(Storage, {
      apiEndpoint: options.apiEndpoint,
      projectId: options.projectId,
      useAuthWithCustomEndpoint: options.useAuthWithCustomEndpoint,
      storageOptions: {
        ...(options.authClient ? { authClient: options.authClient } : {}),
        ...(options.credentials ? { credentials: options.credentials } : {}),
        retryOptions: {
          autoRetry: true,
          maxRetries: this.maxRetries,
          retryDelayMultiplier: 2,
          // The client's upload retry (async-retry) waits at least 1 s and rejects a smaller cap.
          maxRetryDelay: Math.max(1, this.maxRetryDelayMs / 1000),
          totalTimeout: 600,
          // Content-addressed objects and ifGenerationMatch=0 make every request safe to repeat.
          idempotencyStrategy: IdempotencyStrategy.RetryAlways,
        },
      },
    });
    this.media = new MediaClient(this.storage);
    this.bucket = this.storage.bucket(this.bucketName);
  }

  /**
   * A V4 signed URL that reads object `oid` for `expiresInSeconds` (at most 7 days, the
   * service's limit), served as `contentType`. Signed with the client's credentials (a key, or
   * the IAM signBlob API for keyless credentials); the object stays private.
   */
  async signedReadUrl(oid: Oid, expiresInSeconds: number, contentType?: string): Promise<string> {
    const seconds = Math.min(7 * 24 * 3600, Math.max(1, Math.round(expiresInSeconds)));
    const [url] = await this.bucket.file(this.keyOf(oid)).getSignedUrl({
      version: 'v4',
      action: 'read',
      expires: Date.now() + seconds * 1000,
      ...(contentType ? { responseType: contentType } : {}),
    });
    return url;
  }

  /** Smaller files go in one request from memory (the resumable path reads the file). */
  get putFromMemoryBelow(): number {
    return this.resumableThreshold;
  }

  /** Object name of `oid` in the bucket. */
  keyOf(oid: Oid): string {
    return this.root + objectKey(oid);
  }

  private where(oid?: Oid): string {
    return oid ? `${this.url}/${objectKey(oid)}` : this.url;
  }

  /** Exponential backoff with jitter for our own retry loops (downloads, integrity). */
  private backoff(attempt: number, signal?: AbortSignal): Promise<void> {
    const ms = Math.min(this.maxRetryDelayMs, 100 * 2 ** attempt) * (0.5 + Math.random() / 2);
    return sleep(ms, signal);
  }

  // ---------------------------------------------------------------- has / list

  /** What the listing path (gcs-listing.ts) needs of this remote. */
  private get listingSource(): ListingSource {
    return {
      bucket: this.bucket,
      url: this.url,
      root: this.root,
      concurrency: this.concurrency,
      perObjectThreshold: this.perObjectThreshold,
      keyOf: (oid) => this.keyOf(oid),
      where: (oid) => this.where(oid),
      noteUpdated: (oid, updated) => this.noteUpdated(oid, updated),
    };
  }

  /**
   * Which of `oids` exist: asked per object, or by listing the key ranges that hold them
   * (gcs-listing.ts decides which costs fewer requests).
   */
  has(oids: Oid[], options: TransferOptions = {}): Promise<Set<Oid>> {
    return hasObjects(this.listingSource, oids, options);
  }

  async *list(options: TransferOptions = {}): AsyncIterable<Oid> {
    for await (const info of this.listDetailed(options)) yield info.oid;
  }

  /** Last change of objects seen by `has` (for `touch`), bounded to the ids of recent calls. */
  private readonly seenUpdated = new Map<Oid, number>();

  private noteUpdated(oid: Oid, updated: unknown): void {
    const t = Date.parse(String(updated ?? ''));
    if (Number.isFinite(t)) this.seenUpdated.set(oid, t);
  }

  async *listDetailed(options: TransferOptions = {}): AsyncIterable<RemoteObjectInfo> {
    for (const space of ['sha256', 'packs'] as const) {
      let pageToken: string | undefined;
      do {
        const page = await listPage(this.listingSource, { pageToken }, options, space);
        yield* page.infos;
        pageToken = page.nextPageToken;
      } while (pageToken);
    }
  }

  /**
   * Updates the custom metadata `lockstep-used` of objects whose last change (as `has` saw it)
   * is older than `olderThanMs`: the metadata change moves `updated` and bumps the
   * metageneration, so a concurrent `gc --remote` that listed them before keeps them (its delete
   * is conditional on the metageneration it listed) and one that lists after sees them fresh.
   */
  async touch(oids: Oid[], options: TransferOptions & { olderThanMs: number }): Promise<number> {
    const cutoff = Date.now() - options.olderThanMs;
    const stale = oids.filter((oid) => (this.seenUpdated.get(oid) ?? 0) < cutoff);
    const pool = pLimit(this.concurrency);
    let touched = 0;
    await Promise.all(
      stale.map((oid) =>
        pool(async () => {
          options.signal?.throwIfAborted();
          try {
            await this.bucket
              .file(this.keyOf(oid))
              .setMetadata({ metadata: { 'lockstep-used': new Date().toISOString() } });
            touched++;
            this.seenUpdated.set(oid, Date.now());
          } catch (err) {
            if (statusOf(err) === 404) return; // gone: the push's own check will not see it
            throw toGcsError(err, this.where(oid), 'mark in use');
          }
        }),
      ),
    );
    return touched;
  }

  async deleteIfUnchanged(oid: Oid, version: string, options: TransferOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted();
    const [generation, metageneration] = version.split(':').map(Number);
    if (!Number.isFinite(generation) || !Number.isFinite(metageneration)) return false;
    try {
      await this.bucket
        .file(this.keyOf(oid))
        .delete({ ifGenerationMatch: generation, ifMetagenerationMatch: metageneration });
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 412) return false; // gone, or used since the listing
      throw toGcsError(err, this.where(oid), 'delete');
    }
  }

  // ---------------------------------------------------------------- put

  /**
   * Uploads `srcPath` as `oid` unless it is already there. Declares crc32c and md5 so the service
   * refuses damaged bytes, checks the stored object's hashes, and replaces a damaged copy found on
   * the remote (deleting it only at the generation that was checked).
   */
  put(oid: Oid, srcPath: string, options: PutOptions = {}): Promise<boolean> {
    this.allowListeners(options.signal);
    return this.limit(() => uploadObject(this.uploadTarget, oid, srcPath, options));
  }

  /** What the upload path (gcs-upload.ts) needs of this remote. */
  private get uploadTarget(): UploadTarget {
    return {
      bucketName: this.bucketName,
      bucket: this.bucket,
      keyOf: (oid) => this.keyOf(oid),
      where: (oid) => this.where(oid),
      sessions: this.sessions,
      media: this.media,
      resumableThreshold: this.resumableThreshold,
      resumableChunkSize: this.resumableChunkSize,
      maxRetries: this.maxRetries,
      stallTimeoutMs: this.stallTimeoutMs,
      integrityRetries: this.integrityRetries,
      backoff: (attempt, signal) => this.backoff(attempt, signal),
      statObject: (oid, o) => this.statObject(oid, o),
      deleteGeneration: (oid, generation) => this.deleteGeneration(oid, generation),
    };
  }

  private async statObject(oid: Oid): Promise<ObjectHashes>;
  private async statObject(oid: Oid, o: { missingOk: true }): Promise<ObjectHashes | undefined>;
  private async statObject(oid: Oid, o: { missingOk?: boolean } = {}): Promise<ObjectHashes | undefined> {
    try {
      const [metadata] = await this.bucket.file(this.keyOf(oid)).getMetadata();
      return {
        size: Number(metadata.size),
        crc32c: metadata.crc32c,
        md5: metadata.md5Hash,
        generation: String(metadata.generation),
      };
    } catch (err) {
      if (o.missingOk && statusOf(err) === 404) return undefined;
      throw toGcsError(err, this.where(oid), 'metadata read');
    }
  }

  /** Deletes a damaged object, but only the generation we examined (never a fresh good copy). */
  private async deleteGeneration(oid: Oid, generation?: string): Promise<void> {
    try {
      await this.bucket
        .file(this.keyOf(oid))
        .delete(generation ? { ifGenerationMatch: Number(generation) } : {});
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 412) return; // already gone or already replaced
      throw toGcsError(err, this.where(oid), 'delete of a damaged copy');
    }
  }

  // ---------------------------------------------------------------- get

  /**
   * Downloads `oid` to `destPath`, hashing the bytes as they arrive. A dropped or short transfer
   * continues with a Range request pinned to the same generation; a checksum mismatch starts over
   * (up to `integrityRetries` times) and then fails with an IntegrityError. `destPath` only ever
   * holds bytes of this object; the caller checks the sha256 and renames it.
   */
  get(oid: Oid, destPath: string, options: TransferOptions = {}): Promise<DownloadedBytes> {
    this.allowListeners(options.signal);
    return this.limit(() => this.getNow(oid, destPath, options));
  }

  private downloadSource(oid: Oid): DownloadSource {
    return {
      open: (o) => this.media.open(this.bucketName, this.keyOf(oid), o),
      where: this.where(oid),
      maxRetries: this.maxRetries,
      stallTimeoutMs: this.stallTimeoutMs,
      backoff: (attempt, signal) => this.backoff(attempt, signal),
      stat: () => this.statObject(oid),
    };
  }

  /**
   * Each request in flight holds up to two abort listeners on the caller's signal (the request's
   * and its body stream's), and up to `concurrency` requests run at once: Node's default limit
   * of 10 listeners per signal would print a MaxListenersExceededWarning into the user's (or a
   * Vertex AI job's) log for what is no leak.
   */
  private allowListeners(signal: AbortSignal | undefined): void {
    if (!signal) return;
    const need = 2 * this.concurrency + 10;
    const now = getMaxListeners(signal);
    if (now !== 0 && now < need) setMaxListeners(need, signal);
  }

  private async getNow(oid: Oid, destPath: string, options: TransferOptions): Promise<DownloadedBytes> {
    let problem = '';
    for (let attempt = 0; attempt <= this.integrityRetries; attempt++) {
      if (attempt > 0) await this.backoff(attempt, options.signal);
      const result = await downloadOnce(this.downloadSource(oid), destPath, options);
      if (result.ok) return { sha256: result.sha256, size: result.size };
      problem = result.problem;
    }
    await fsp.rm(destPath, { force: true });
    throw new IntegrityError(
      formatProblem(
        this.where(oid),
        'download fails its checksum',
        problem,
        'The remote copy may be damaged: delete that object and push it again from a good cache.',
      ),
    );
  }
}
