/** Types for hash-worker.mjs. */
export interface HashTask {
  /** File to read. */
  path: string;
  /** When set, the bytes are also written here (created exclusively). */
  dest?: string;
  /**
   * How `dest` gets the bytes: copied as they are hashed (default); `reflink`, a copy-on-write
   * clone that is then hashed; `hardlink`, a second name for the source after it is hashed.
   */
  link?: 'reflink' | 'hardlink';
  /** When `link` cannot be made for this file (another file system), copy it instead. */
  fallbackCopy?: boolean;
  /** fsync `dest` before closing it. */
  fsync?: boolean;
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
  /** True when `dest` was fsynced (`fsync`). */
  synced?: boolean;
}
export function hashOne(task: HashTask): HashOneResult;
/** `hashOne`, with a large copy written straight to the disk (O_DIRECT) while it is hashed. */
export function hashOneAsync(task: HashTask): Promise<HashOneResult>;
