/**
 * Runs `featurizeAudio` over many WAV files on worker threads (`lib/ml/features-worker.mjs`).
 * Each file is computed independently by the same code, and results are stored by file index,
 * so the output is identical whatever the worker count or completion order.
 */
import fs from 'node:fs';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodeWav } from '../../lib/audio/wav.ts';
import type { ClipFeatures, FeaturizeConfig } from '../../lib/ml/features.ts';
import { featurizeAudio, FrameExtractor } from '../../lib/ml/features.ts';
import { inspectDecoded, type ClipCheck } from '../../lib/validation/clip.ts';
import type { InputChecks } from '../../lib/validation/schema.ts';

export interface FileFeatures extends ClipFeatures {
  /** Seconds of audio decoded (before truncation). */
  seconds: number;
  /** The input checks' findings (with the pool's `checks` option). */
  check?: ClipCheck;
}

/**
 * The outcome per file: features, or the reason it could not be read or featurized (with the
 * pool's `checks`, `check` is set whenever the file decoded).
 */
export type FileResult = FileFeatures | { error: string; check?: ClipCheck };

export interface FeaturizeFilesOptions {
  /**
   * Compute threads; 0 or 1 computes in this thread only. Default: available cores (at most
   * one per file). With n > 1, n - 1 workers start and this thread featurizes files too while
   * they boot, so small jobs never wait for worker start-up.
   */
  workers?: number;
  /** Let this thread take files too (default true); false sends every file to the workers. */
  useMainThread?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

const workerUrl = new URL('../../lib/ml/features-worker.mjs', import.meta.url);

/** Default thread count: the cores this process may use. */
export function defaultWorkers(): number {
  return Math.max(1, os.availableParallelism());
}

function featurizeFile(
  config: FeaturizeConfig,
  file: string,
  extractor: FrameExtractor,
  checks: InputChecks | undefined,
): FileResult {
  let check: ClipCheck | undefined;
  try {
    const audio = decodeWav(fs.readFileSync(file), file);
    if (checks) check = inspectDecoded(audio, checks);
    const features = featurizeAudio(config, audio, extractor);
    return { ...features, seconds: audio.length / audio.sampleRate, ...(check ? { check } : {}) };
  } catch (err) {
    return { error: (err as Error).message, ...(check ? { check } : {}) };
  }
}

const yieldToEvents = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Files queued on each worker at once. */
const WORKER_DEPTH = 2;

interface Task {
  file: string;
  /** Delivers the result; the job counts it. */
  settle: (result: FileResult) => void;
}

interface WorkerReply extends Partial<FileFeatures> {
  id: number;
  ready?: boolean;
  error?: string;
  check?: ClipCheck;
}

export interface FeaturePoolOptions {
  /** Compute threads in all, this thread included when `useMainThread` (default: cores). */
  workers?: number;
  /** Let this thread take files too (default true). */
  useMainThread?: boolean;
  /** Also run the per-clip input checks against these (results carry `check`). Default: none. */
  checks?: InputChecks;
}

/**
 * Threads that stay up across many `run` calls, so a long job split into chunks (batch
 * prediction) pays worker start-up once. Files are handed out one at a time from a shared queue,
 * to the workers and (unless disabled) to this thread, yielding between files so replies are
 * handled; a worker that dies fails the runs in flight.
 */
export class FeaturePool {
  readonly config: FeaturizeConfig;
  readonly threads: number;
  private readonly useMain: boolean;
  /** The input checks each result carries (`checks` option). */
  readonly checks: InputChecks | undefined;
  private readonly workers: Worker[] = [];
  /** One entry per file a worker may take now (a worker appears up to WORKER_DEPTH times). */
  private readonly idle: Worker[] = [];
  private readonly inFlight = new Map<number, Task>();
  private readonly queue: Task[] = [];
  private readonly extractor: FrameExtractor;
  private nextId = 0;
  private mainBusy = false;
  private broken: Error | undefined;
  private readonly failHandlers = new Set<(err: Error) => void>();
  private closed = false;
  /** Worker threads started over the pool's life (they are never restarted). */
  started = 0;

  constructor(config: FeaturizeConfig, options: FeaturePoolOptions = {}) {
    this.config = config;
    this.threads = Math.max(1, options.workers ?? defaultWorkers());
    this.useMain = options.useMainThread ?? true;
    this.checks = options.checks;
    this.extractor = new FrameExtractor(config);
    const count = this.threads <= 1 && this.useMain ? 0 : this.useMain ? this.threads - 1 : this.threads;
    for (let i = 0; i < count; i++) this.startWorker();
  }

  private startWorker(): void {
    const w = new Worker(workerUrl);
    this.started++;
    this.workers.push(w);
    w.on('message', (m: WorkerReply) => {
      if (!m.ready) {
        const task = this.inFlight.get(m.id);
        this.inFlight.delete(m.id);
        const check = m.check ? { check: m.check } : {};
        task?.settle(
          m.error !== undefined
            ? { error: m.error, ...check }
            : { summary: m.summary!, frames: m.frames!, nFrames: m.nFrames!, seconds: m.seconds!, ...check },
        );
      }
      // A worker asks for work once its modules are loaded: it gets WORKER_DEPTH files, then one
      // per reply, so it never waits for this thread to finish a file before it gets the next.
      for (let i = m.ready ? WORKER_DEPTH : 1; i > 0; i--) this.idle.push(w);
      this.dispatch();
    });
    w.on('error', (err: Error) => this.fail(err));
    w.on('exit', (code) => {
      if (!this.closed) this.fail(new Error(`featurize worker exited early with code ${code}`));
    });
  }

  private fail(err: Error): void {
    if (this.broken) return;
    this.broken = err;
    for (const handler of this.failHandlers) handler(err);
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop()!;
      const task = this.queue.shift()!;
      const id = this.nextId++;
      this.inFlight.set(id, task);
      w.postMessage({ id, file: task.file, config: this.config, checks: this.checks });
    }
    if (this.useMain && !this.mainBusy && this.queue.length > 0) void this.mainLoop();
  }

  /** This thread takes files one at a time, yielding between them so worker replies are handled. */
  private async mainLoop(): Promise<void> {
    this.mainBusy = true;
    try {
      while (this.queue.length > 0 && !this.broken) {
        const task = this.queue.shift()!;
        task.settle(featurizeFile(this.config, task.file, this.extractor, this.checks));
        await yieldToEvents();
      }
    } finally {
      this.mainBusy = false;
    }
  }

  /** Featurizes `files` (absolute paths); result `i` belongs to `files[i]`, whichever thread ran it. */
  run(
    files: string[],
    options: { signal?: AbortSignal; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<FileResult[]> {
    if (this.closed) return Promise.reject(new Error('featurize pool is closed'));
    if (this.broken) return Promise.reject(this.broken);
    const total = files.length;
    const results: FileResult[] = new Array(total);
    if (total === 0) return Promise.resolve(results);
    return new Promise<FileResult[]>((resolve, reject) => {
      let done = 0;
      let over = false;
      const tasks: Task[] = [];
      const end = (err?: unknown): void => {
        if (over) return;
        over = true;
        this.failHandlers.delete(onFail);
        options.signal?.removeEventListener('abort', onAbort);
        if (err === undefined) return resolve(results);
        // Drop this run's queued files; ones already on a worker finish and are ignored.
        for (const t of tasks) {
          const i = this.queue.indexOf(t);
          if (i >= 0) this.queue.splice(i, 1);
        }
        reject(err);
      };
      const onFail = (err: Error): void => end(err);
      const onAbort = (): void => end(options.signal?.reason ?? new Error('aborted'));
      this.failHandlers.add(onFail);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      files.forEach((file, i) => {
        const task: Task = {
          file,
          settle: (result) => {
            if (over) return;
            results[i] = result;
            done++;
            options.onProgress?.(done, total);
            if (done === total) end();
          },
        };
        tasks.push(task);
        this.queue.push(task);
      });
      if (options.signal?.aborted) return onAbort();
      this.dispatch();
    });
  }

  /** Stops the workers; runs still in flight fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.fail(new Error('featurize pool is closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** Featurizes `files` (absolute paths); result `i` belongs to `files[i]`, whichever thread ran it. */
export async function featurizeFiles(
  config: FeaturizeConfig,
  files: string[],
  options: FeaturizeFilesOptions = {},
): Promise<FileResult[]> {
  const threads = Math.max(1, Math.min(options.workers ?? defaultWorkers(), files.length));
  const pool = new FeaturePool(config, { workers: threads, useMainThread: options.useMainThread });
  try {
    return await pool.run(files, { signal: options.signal, onProgress: options.onProgress });
  } finally {
    await pool.close();
  }
}
