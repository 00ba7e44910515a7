/**
 * Parallel hashing (and hash-while-copying) across cores with worker_threads. Small jobs run
 * inline, because starting workers costs more than hashing a few small files. Work is handed
 * out in batches sized by bytes so 10,000 small files cost few messages and one huge file does
 * not starve the other worker.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { hashOne, type HashTask, type HashOneResult } from './hash-worker.mjs';
import type { Output } from '../output.ts';
import { createProgress } from '../progress.ts';

export type { HashTask, HashOneResult };

/** A per-file failure reported by a worker: `code` is an errno name or ECHANGED / ENOTFILE. */
export class HashTaskError extends Error {
  readonly code: string;
  readonly task: HashTask;
  constructor(task: HashTask, code: string, message: string) {
    super(message);
    this.code = code;
    this.task = task;
  }
}

export interface HashFilesOptions {
  out?: Output;
  signal?: AbortSignal;
  /** Progress label ("hashing"); no progress output when omitted. */
  label?: string;
  /** Expected bytes per task (from a prior stat), used for batching and progress. */
  sizes?: number[];
}

const INLINE_BYTES = 8 << 20;
const BATCH_BYTES = 4 << 20;
const BATCH_FILES = 64;

let pool: Worker[] | undefined;

function workerCount(): number {
  const env = Number(process.env.LOCKSTEP_HASH_WORKERS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(os.availableParallelism(), 8));
}

function getPool(): Worker[] {
  if (!pool) {
    const url = new URL('./hash-worker.mjs', import.meta.url);
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
  const sizes = options.sizes ?? tasks.map(() => 0);
  const total = sizes.reduce((a, b) => a + b, 0);
  const progress =
    options.label && options.out && tasks.length > 0
      ? createProgress(options.out, options.label, tasks.length)
      : undefined;
  try {
    const workers = tasks.length >= 4 && total >= INLINE_BYTES ? getPool() : undefined;
    if (!workers || workers.length === 1) return runInline(tasks, options.signal, progress);
    return await runPooled(workers, tasks, sizes, options.signal, progress);
  } finally {
    progress?.stop();
  }
}

function runInline(
  tasks: HashTask[],
  signal: AbortSignal | undefined,
  progress: { tick(n: number): void } | undefined,
): HashOneResult[] {
  const results: HashOneResult[] = [];
  for (const task of tasks) {
    signal?.throwIfAborted();
    try {
      results.push(hashOne(task));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new HashTaskError(task, e.code ?? 'EUNKNOWN', e.message);
    }
    progress?.tick(1);
  }
  return results;
}

function runPooled(
  workers: Worker[],
  tasks: HashTask[],
  sizes: number[],
  signal: AbortSignal | undefined,
  progress: { tick(n: number): void } | undefined,
): Promise<HashOneResult[]> {
  const results: HashOneResult[] = new Array(tasks.length);
  let next = 0;
  let inFlight = 0;
  let failure: unknown;
  return new Promise((resolve, reject) => {
    const finish = () => {
      if (inFlight > 0) return;
      for (const w of workers) {
        w.removeAllListeners('message');
        w.removeAllListeners('error');
        w.unref();
      }
      if (failure !== undefined) reject(failure);
      else if (next >= tasks.length) resolve(results);
    };
    const dispatch = (w: Worker) => {
      if (failure === undefined && signal?.aborted) failure = signal.reason;
      if (failure !== undefined || next >= tasks.length) return finish();
      const start = next;
      let bytes = 0;
      while (next < tasks.length && next - start < BATCH_FILES && bytes < BATCH_BYTES) {
        bytes += sizes[next] ?? 0;
        next++;
      }
      const end = next;
      inFlight++;
      w.ref();
      w.once('message', (batch: Array<HashOneResult & { error?: { code: string; message: string } }>) => {
        inFlight--;
        batch.forEach((r, i) => {
          const task = tasks[start + i]!;
          if (r.error) failure ??= new HashTaskError(task, r.error.code, r.error.message);
          else results[start + i] = r;
        });
        progress?.tick(end - start);
        dispatch(w);
      });
      w.postMessage(tasks.slice(start, end));
    };
    for (const w of workers) {
      w.on('error', (err) => {
        failure ??= err;
        inFlight = 0;
        pool = undefined;
        finish();
      });
      dispatch(w);
    }
  });
}
