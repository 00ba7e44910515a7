/**
 * Parallel hashing (and hash-while-copying) across cores with worker_threads. Small jobs run
 * inline, because starting workers costs more than hashing a few small files. Work is handed
 * out in batches sized by bytes so 10,000 small files cost few messages and one huge file does
 * not starve the other worker.
 */
import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { hashOneAsync, type HashTask, type HashOneResult } from './hash-worker.mjs';
import type { Output } from '../output.ts';

export type { HashTask, HashOneResult };

/**
 * A per-file failure reported by a worker: `code` is an errno name or ECHANGED / ENOTFILE;
 * `writing` when it came from writing the copy in the cache rather than reading the file.
 */
export class HashTaskError extends Error {
  readonly code: string;
  readonly task: HashTask;
  readonly writing: boolean;
  constructor(task: HashTask, code: string, message: string, writing = false) {
    super(message);
    this.code = code;
    this.task = task;
    this.writing = writing;
  }
}

export interface HashFilesOptions {
  out?: Output;
  signal?: AbortSignal;
  /** Progress label ("hashing"); no progress output when omitted. */
  label?: string;
  /** Expected bytes per task (from a prior stat), used for batching and progress. */
  sizes?: number[];
  /**
   * Called with each result as soon as it is in (before the whole job has finished), e.g. to
   * start making a written file durable while the next ones are hashed.
   */
  onResult?: (index: number, result: HashOneResult) => void;
}

const INLINE_BYTES = 8 << 20;
const BATCH_BYTES = 4 << 20;
const BATCH_FILES = 64;

let pool: Worker[] | undefined;
/** Settles when the pooled job in progress (if any) has finished. */
let poolTurn: Promise<void> = Promise.resolve();

/** Worker threads: one per core (at most 8); the main thread only hands out work. */
function workerCount(): number {
  const env = Number(process.env.LOCKSTEP_HASH_WORKERS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(os.availableParallelism(), 8));
}

/**
 * The worker threads, started on first use; undefined when the worker script is not next to this
 * module (a bundled action), in which case everything is hashed on this thread.
 */
function getPool(): Worker[] | undefined {
  if (!pool) {
    const url = new URL('./hash-worker.mjs', import.meta.url);
    if (url.protocol !== 'file:' || !fs.existsSync(fileURLToPath(url))) return undefined;
    pool = Array.from({ length: workerCount() }, () => {
      const w = new Worker(url);
      w.unref();
      return w;
    });
  }
  return pool;
}

/** Stops the worker threads (they are unref'd, so this is only needed to free them early). */
export async function closeHashPool(): Promise<void> {
  const workers = pool;
  pool = undefined;
  if (workers) await Promise.all(workers.map((w) => w.terminate()));
}

/**
 * Runs every task and returns results in task order. The first failure rejects (with a
 * HashTaskError) after in-flight batches settle; no new batches start after it.
 */
export async function hashFiles(tasks: HashTask[], options: HashFilesOptions = {}): Promise<HashOneResult[]> {
  // A few files are cheap to stat, and without sizes four 256 MiB files would look like a small
  // job and run on this thread alone. For many, only the count says whether workers are worth it.
  const known = options.sizes ?? (tasks.length < 64 ? tasks.map((t) => sizeOf(t.path)) : undefined);
  const sizes = known ?? tasks.map(() => 0);
  const total = known ? sizes.reduce((a, b) => a + b, 0) : INLINE_BYTES;
  // Loaded only when shown: the progress bar library costs a large job nothing, and a few big
  // files (no bar) should not wait for it before their hashing starts.
  const progress =
    options.label && options.out && tasks.length > 0
      ? (await import('../progress.ts')).createProgress(options.out, options.label, tasks.length)
      : undefined;
  try {
    const workers = tasks.length >= 4 && total >= INLINE_BYTES ? getPool() : undefined;
    if (!workers) return await runInline(tasks, options.signal, progress, options.onResult);
    // One pooled job at a time: replies carry no job id, so concurrent jobs would mix them up.
    const previous = poolTurn;
    let release!: () => void;
    poolTurn = new Promise<void>((r) => (release = r));
    await previous;
    try {
      return await runPooled(workers, tasks, sizes, options.signal, progress, options.onResult);
    } finally {
      release();
    }
  } finally {
    progress?.stop();
  }
}

/** Size of `file`, 0 when it cannot be stat'ed (the hash task reports why). */
function sizeOf(file: string): number {
  try {
    return fs.statSync(file).size;
  } catch {
    return 0;
  }
}

async function runInline(
  tasks: HashTask[],
  signal: AbortSignal | undefined,
  progress: { tick(n: number): void } | undefined,
  onResult: ((index: number, result: HashOneResult) => void) | undefined,
): Promise<HashOneResult[]> {
  const results: HashOneResult[] = [];
  for (const task of tasks) {
    signal?.throwIfAborted();
    try {
      results.push(await hashOneAsync(task));
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { writing?: boolean };
      throw new HashTaskError(task, e.code ?? 'EUNKNOWN', e.message, Boolean(e.writing));
    }
    onResult?.(results.length - 1, results[results.length - 1]!);
    progress?.tick(1);
  }
  return results;
}

/**
 * Hashes on the worker threads while this thread only hands out work, so a worker's reply is
 * handled at once (were this thread hashing a 256 MiB file, a worker done with its own would sit
 * idle until then) and callers can start I/O (fsyncs) as results arrive. A worker keeps a second
 * batch queued only while the bytes queued to it are small: with small files that hides the
 * message round trip; with big ones a second queued file would be one the other worker could
 * have taken.
 */
async function runPooled(
  workers: Worker[],
  tasks: HashTask[],
  sizes: number[],
  signal: AbortSignal | undefined,
  progress: { tick(n: number): void } | undefined,
  onResult: ((index: number, result: HashOneResult) => void) | undefined,
): Promise<HashOneResult[]> {
  const results: HashOneResult[] = new Array(tasks.length);
  let next = 0;
  let failure: unknown;
  const takeBatch = (): [number, number, number] | undefined => {
    if (failure === undefined && signal?.aborted) failure = signal.reason;
    if (failure !== undefined || next >= tasks.length) return undefined;
    const start = next;
    let bytes = 0;
    while (next < tasks.length && next - start < BATCH_FILES && bytes < BATCH_BYTES) {
      bytes += sizes[next] ?? 0;
      next++;
    }
    return [start, next, bytes];
  };
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          const queued: Array<[number, number, number]> = [];
          let queuedBytes = 0;
          const finish = () => {
            w.off('message', onMessage);
            w.off('error', onError);
            w.unref();
            resolve();
          };
          const pump = () => {
            while (queued.length < 2 && (queued.length === 0 || queuedBytes < BATCH_BYTES)) {
              const batch = takeBatch();
              if (!batch) break;
              queued.push(batch);
              queuedBytes += batch[2];
              w.postMessage(tasks.slice(batch[0], batch[1]));
            }
            if (queued.length === 0) finish();
          };
          const onMessage = (
            replies: Array<HashOneResult & { error?: { code: string; message: string; writing?: boolean } }>,
          ) => {
            const [start, end, bytes] = queued.shift()!;
            queuedBytes -= bytes;
            replies.forEach((r, i) => {
              if (r.error)
                failure ??= new HashTaskError(
                  tasks[start + i]!,
                  r.error.code,
                  r.error.message,
                  Boolean(r.error.writing),
                );
              else {
                results[start + i] = r;
                onResult?.(start + i, r);
              }
            });
            progress?.tick(end - start);
            pump();
          };
          const onError = (err: unknown) => {
            failure ??= err;
            pool = undefined;
            finish();
          };
          w.on('message', onMessage);
          w.on('error', onError);
          w.ref();
          pump();
        }),
    ),
  );
  if (failure !== undefined) throw failure;
  return results;
}
