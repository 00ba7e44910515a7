/**
 * A remote object store holding the same layout as the local cache (`sha256/ab/cdef...`).
 * Implementations: a local directory (`file://` URL or a path) and Google Cloud Storage (`gs://`).
 * Packs of a directory's small files (packs.ts) sit beside the objects under `packs/`, with
 * ids `pack-<64 hex>` that every method takes where it takes an oid.
 * A remote never decides what is valid: callers verify every object's sha256 before it enters
 * the cache, and implementations verify transfer checksums where the protocol offers them.
 */
import type { Oid } from '../types.ts';

/** What a download wrote: the sha256 (hex) and length of the bytes, hashed as they arrived. */
export interface DownloadedBytes {
  sha256: string;
  size: number;
}

export interface TransferOptions {
  signal?: AbortSignal;
}

export interface PutOptions extends TransferOptions {
  /**
   * The file's bytes, read and verified by the caller: an implementation may send these instead
   * of reading the file again (a small object is then read once for both).
   */
  data?: Buffer;
}

export interface Remote {
  /** The URL it was opened from (`file:///abs/dir`, `gs://bucket/prefix`). Never holds credentials. */
  readonly url: string;
  /**
   * A put given `data` of fewer bytes than this sends those bytes and never reads its `srcPath`
   * (undefined: it may read the file).
   */
  readonly putFromMemoryBelow?: number;
  /** Which of `oids` exist on the remote, in as few requests as the backend allows. */
  has(oids: Oid[], options?: TransferOptions): Promise<Set<Oid>>;
  /**
   * Uploads the file at `srcPath` as object `oid` (the caller has verified the bytes hash to
   * `oid`). Resolves true when this call stored it, false when the remote already held it (a
   * concurrent pusher got there first).
   */
  put(oid: Oid, srcPath: string, options?: PutOptions): Promise<boolean>;
  /**
   * Downloads object `oid` to `destPath` (a temporary path chosen by the caller). The caller
   * verifies the sha256 and renames it into the cache; a mismatch is an IntegrityError. A
   * remote that hashed the bytes as it wrote them returns their sha256 and count, so the caller
   * need not read the file again.
   */
  get(oid: Oid, destPath: string, options?: TransferOptions): Promise<DownloadedBytes | void>;
  /** Every object id on the remote, then every pack id. */
  list(options?: TransferOptions): AsyncIterable<Oid>;
  /** Every object and pack with its size, last change and version, for retention (`gc --remote`). */
  listDetailed(options?: TransferOptions): AsyncIterable<RemoteObjectInfo>;
  /**
   * Marks objects a push found already there as in use now, when their last change is older
   * than `olderThanMs`: a concurrent `gc --remote` keeps what a change was made to after it
   * listed (see deleteIfUnchanged). Returns how many were marked.
   */
  touch(oids: Oid[], options: TransferOptions & { olderThanMs: number }): Promise<number>;
  /** Deletes `oid` only if it is still at `version` (as listed); false when it changed or is gone. */
  deleteIfUnchanged(oid: Oid, version: string, options?: TransferOptions): Promise<boolean>;
  /**
   * Temp files of uploads that never finished (a push killed mid-put) last changed before
   * `before` (ms since the epoch): removed with `apply`, counted either way. Only remotes that
   * write such temps where others can see them (a directory remote's `tmp/`) have it.
   */
  sweepTemps?(before: number, options: TransferOptions & { apply: boolean }): Promise<number>;
}

/** One object as a detailed listing reports it. */
export interface RemoteObjectInfo {
  oid: Oid;
  size: number;
  /** Last change of the object's bytes or metadata (ms since the epoch). */
  updated: number;
  /** Opaque: changes whenever the object is replaced or touched. */
  version: string;
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

/**
 * Path of object `oid` relative to a store root: `sha256/ab/cdef...`; a pack (`pack-abcdef...`,
 * packs.ts) is at `packs/ab/cdef...`.
 */
export function objectKey(oid: Oid): string {
  if (oid.startsWith('pack-')) return `packs/${oid.slice(5, 7)}/${oid.slice(7)}`;
  return `sha256/${oid.slice(0, 2)}/${oid.slice(2)}`;
}

/** True for a 64-hex-digit lower-case sha256. */
export function isOid(value: string): boolean {
  return /^[0-9a-f]{64}$/.test(value);
}
