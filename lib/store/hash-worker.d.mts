/** Types for hash-worker.mjs. */
export interface HashTask {
  /** File to read. */
  path: string;
  /** When set, the bytes are also written here (created exclusively). */
  dest?: string;
  /** fsync `dest` before closing it. */
  fsync?: boolean;
  /**
   * fsync `dest` before closing it when it holds at least 16 MiB: a big file's write-back then
   * overlaps the hashing of the next file, while small ones are left to one batched sync.
   */
  fsyncLarge?: boolean;
  /** Mode `dest` is created with (default 0o644). */
  mode?: number;
  /** Object directory (`<cache>/sha256`): a small file whose object exists there is not copied. */
  objects?: string;
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
  /** True when `dest` was not written because the object already existed in `objects`. */
  existed?: boolean;
  /** True when `dest` was fsynced (`fsync`, or `fsyncLarge` and a large file). */
  synced?: boolean;
}
export function hashOne(task: HashTask): HashOneResult;
