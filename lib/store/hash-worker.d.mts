/** Types for hash-worker.mjs. */
export interface HashTask {
  /** File to read. */
  path: string;
  /** When set, the bytes are also written here (created exclusively). */
  dest?: string;
  /** fsync `dest` before closing it. */
  fsync?: boolean;
  /** Mode `dest` is created with (default 0o644). */
  mode?: number;
  /** Fail the write with ENOSPC (fault injection). */
  fault?: boolean;
}
export interface HashOneResult {
  oid: string;
  size: number;
  /** `dev:ino:size:mtimeNs` of the source, taken before reading. */
  key: string;
  /** Same for `dest` after writing. */
  destKey?: string;
}
export function hashOne(task: HashTask): HashOneResult;
