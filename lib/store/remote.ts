/**
 * A remote object store holding the same layout as the local cache (`sha256/ab/cdef...`).
 * Implementations: a local directory (`file://` URL or a path) and Google Cloud Storage (`gs://`).
 * A remote never decides what is valid: callers verify every object's sha256 before it enters
 * the cache, and implementations verify transfer checksums where the protocol offers them.
 */
import type { Oid } from '../types.ts';

export interface TransferOptions {
  signal?: AbortSignal;
}

export interface Remote {
  /** The URL it was opened from (`file:///abs/dir`, `gs://bucket/prefix`). Never holds credentials. */
  readonly url: string;
  /** Which of `oids` exist on the remote, in as few requests as the backend allows. */
  has(oids: Oid[], options?: TransferOptions): Promise<Set<Oid>>;
  /**
   * Uploads the file at `srcPath` as object `oid` (the caller has verified the bytes hash to
   * `oid`). Resolves true when this call stored it, false when the remote already held it (a
   * concurrent pusher got there first).
   */
  put(oid: Oid, srcPath: string, options?: TransferOptions): Promise<boolean>;
  /**
   * Downloads object `oid` to `destPath` (a temporary path chosen by the caller). The caller
   * verifies the sha256 and renames it into the cache; a mismatch is an IntegrityError.
   */
  get(oid: Oid, destPath: string, options?: TransferOptions): Promise<void>;
  /** Every object id on the remote. */
  list(options?: TransferOptions): AsyncIterable<Oid>;
}

/** Options for opening a remote. */
export interface OpenRemoteOptions {
  /** GCS: API endpoint override (tests point it at a local server). */
  apiEndpoint?: string;
  /** GCS: project id. */
  projectId?: string;
  /** Maximum concurrent requests (default 16). */
  concurrency?: number;
}

/** Path of object `oid` relative to a store root: `sha256/ab/cdef...`. */
export function objectKey(oid: Oid): string {
  return `sha256/${oid.slice(0, 2)}/${oid.slice(2)}`;
}

/** True for a 64-hex-digit lower-case sha256. */
export function isOid(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}
