/**
 * Shadow traffic off the answer path. In a canary's shadow step the candidate predicts every
 * instance the stable model answered, but on a worker thread of its own
 * (`./shadow-worker.mjs`, started on the first mirrored request, one per serving process), so
 * the answered request never waits for it: a slow candidate slows its own thread (which runs at
 * the lowest CPU priority), a hung one is terminated after `timeoutMs` and the worker restarted,
 * and when the bounded queue is full new instances are skipped and counted, never queued without
 * limit. Each candidate prediction is logged as a shadow entry (`role: 'shadow'`, the stable
 * model's answer beside it), exactly as the canary analysis reads them; a timeout is logged as the
 * candidate's error (a hung model is a failing model), a skip only counted.
 *
 * The budget is the worker thread's own CPU time where Linux tells it (/proc/self/task/<tid>):
 * a nice-19 thread on a loaded machine may get no CPU for seconds, and a candidate is not to
 * blame for that. A thread still short of its budget after `starvedAfterMs` of wall time is cut
 * off as starved: counted, not logged as the candidate's error. After any cut-off the next worker
 * starts only after a back-off (doubling per consecutive cut-off, reset by a good prediction),
 * and instances arriving meanwhile are skipped, so a candidate that keeps hanging does not reload
 * TensorFlow.js on a fresh thread per instance.
 *
 * This file holds the worker, its queue, deadlines and back-off; shadow-log.ts the messages and
 * the log entries they become.
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, Worker } from 'node:worker_threads';
import {
  logShadowError,
  logShadowOk,
  threadCpuMs,
  type Job,
  type MirrorRequest,
  type Reply,
} from './shadow-log.ts';

export interface ShadowOptions {
  /** Instances waiting for or in the worker at once before new ones are skipped (default 64). */
  maxQueue?: number;
  /** Longest one candidate prediction may run before the worker is terminated and restarted (ms, default 2000). */
  timeoutMs?: number;
  /** Longest the worker may take to start and load a model (ms, default 120 000). */
  loadTimeoutMs?: number;
  /** Wall time after which a prediction still short of `timeoutMs` of CPU is cut off as starved (ms, default 10 x timeoutMs). */
  starvedAfterMs?: number;
  /** Wait after a cut-off worker before a fresh one starts (ms, default 1000; doubles per consecutive cut-off). */
  backoffMs?: number;
  /** Longest back-off (ms, default 60 000). */
  maxBackoffMs?: number;
  /** Where warnings go (skips, timeouts, restarts; at most one line per 10 s). Default: stderr. */
  warn?: (line: string) => void;
}

/** What happened to mirrored instances since the server started. */
export interface ShadowCounts {
  /** Candidate predictions logged as `ok`. */
  predicted: number;
  /** Candidate predictions that threw (or whose model could not load), logged as `error`. */
  failed: number;
  /** Predictions cut off after `timeoutMs` (the worker was restarted), logged as `error`. */
  timedOut: number;
  /** Predictions cut off because the thread got too little CPU for too long (restarted, not logged). */
  starved: number;
  /** Instances never sent to the candidate: the queue was full, the route has no model directory, the worker was backing off after a cut-off, or the server stopped. */
  skipped: number;
  /** Worker threads started (the first one included). */
  workersStarted: number;
  /** Instances waiting or in the worker now. */
  queued: number;
}

const workerUrl = new URL('./shadow-worker.mjs', import.meta.url);
const WARN_EVERY_MS = 10_000;

/**
 * The shadow worker of one serving process. Emits `started` when the candidate begins a
 * prediction (its model loaded) and `idle` when nothing is queued or in the worker.
 */
export class ShadowTraffic extends EventEmitter {
  private readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly loadTimeoutMs: number;
  private readonly starvedAfterMs: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly warnLine: (line: string) => void;
  private readonly counts_: Omit<ShadowCounts, 'queued'> = {
    predicted: 0,
    failed: 0,
    timedOut: 0,
    starved: 0,
    skipped: 0,
    workersStarted: 0,
  };
  private readonly queue: Job[] = [];
  private worker: Worker | undefined;
  /** The port to the current worker (see shadow-worker.mjs for why not parentPort). */
  private port: MessagePort | undefined;
  private current: Job | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The current worker's thread id, once it told it. */
  private tid: number | undefined;
  /** Consecutive cut-offs, and the back-off timer while one runs. */
  private cutoffs = 0;
  private backoff: NodeJS.Timeout | undefined;
  private nextId = 0;
  private closed = false;
  private lastWarn = -Infinity;
  private idleWaiters: (() => void)[] = [];

  constructor(options: ShadowOptions = {}) {
    super();
    this.maxQueue = options.maxQueue ?? 64;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.loadTimeoutMs = options.loadTimeoutMs ?? 120_000;
    this.starvedAfterMs = options.starvedAfterMs ?? 10 * this.timeoutMs;
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 60_000;
    this.warnLine = options.warn ?? ((line) => process.stderr.write(line + '\n'));
  }

  /** Counters for the health route and the logs. */
  counts(): ShadowCounts {
    return { ...this.counts_, queued: this.queue.length + (this.current ? 1 : 0) };
  }

  /** True once anything was mirrored or skipped. */
  get used(): boolean {
    return this.counts_.workersStarted > 0 || this.counts_.skipped > 0;
  }

  /**
   * Queues every instance of an answered request for the candidate and returns at once. Whole
   * requests are skipped when they do not fit the queue (a half-mirrored request would pair
   * nothing useful).
   */
  mirror(req: MirrorRequest): void {
    const n = req.instances.length;
    if (
      this.closed ||
      this.backoff ||
      req.candidate.modelDir === undefined ||
      this.counts().queued + n > this.maxQueue
    ) {
      this.counts_.skipped += n;
      const why = this.closed
        ? 'the server is stopping'
        : this.backoff
          ? `the worker is backing off after ${this.cutoffs} cut-off prediction(s) in a row`
          : req.candidate.modelDir === undefined
            ? `deployed model ${req.candidate.deployedModelId} has no model directory to load in the shadow worker`
            : `the queue is full (${this.maxQueue} instances)`;
      this.warn(why);
      return;
    }
    for (let index = 0; index < n; index++) this.queue.push({ id: ++this.nextId, req, index });
    this.pump();
  }

  /** Resolves once nothing is queued or in the worker (for tests and a draining shutdown). */
  settled(): Promise<void> {
    if (this.counts().queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops the worker at once (a busy or hung candidate included); queued instances are skipped. */
  async close(): Promise<void> {
    this.closed = true;
    this.counts_.skipped += this.queue.length + (this.current ? 1 : 0);
    this.queue.length = 0;
    this.current = undefined;
    clearTimeout(this.timer);
    clearTimeout(this.backoff);
    this.backoff = undefined;
    const w = this.worker;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    this.notifyIdle();
    if (w) await w.terminate();
  }

  private pump(): void {
    if (this.closed || this.backoff || this.current || this.queue.length === 0) {
      if (!this.current && this.queue.length === 0) {
        // Idle: nothing of ours keeps the process alive.
        this.port?.unref();
        this.notifyIdle();
      }
      return;
    }
    const job = this.queue.shift()!;
    this.current = job;
    this.ensureWorker();
    // Busy: a short-lived process waiting in settled() stays up for the reply.
    this.port!.ref();
    const { candidate, instances } = job.req;
    this.port!.postMessage({
      id: job.id,
      key: candidate.modelVersionId,
      dir: candidate.modelDir,
      loader: candidate.loaderRef,
      instance: instances[job.index],
    });
    // Until the worker says the prediction started, the clock is the start-up and load one.
    this.arm(this.loadTimeoutMs, job, 'start and load the model');
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const { port1, port2 } = new MessageChannel();
    const w = new Worker(workerUrl, { workerData: { port: port2 }, transferList: [port2] });
    this.counts_.workersStarted++;
    this.tid = undefined;
    // A shadow worker must never keep a short-lived process (`lockstep predict`) alive.
    w.unref();
    port1.on('message', (reply: Reply) => this.onReply(w, reply));
    port1.unref();
    this.port?.close();
    this.port = port1;
    w.on('error', (err: Error) =>
      this.onWorkerGone(w, `the shadow worker failed (${err.message.split('\n')[0]})`),
    );
    w.on('exit', (code) => this.onWorkerGone(w, `the shadow worker exited with code ${code}`));
    this.worker = w;
    return w;
  }

  private arm(ms: number, job: Job, what: string): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(job, ms, what), ms);
    this.timer.unref();
  }

  private onReply(w: Worker, reply: Reply): void {
    const job = this.current;
    if (w !== this.worker || !job || reply.id !== job.id) return;
    if (reply.started) {
      if (reply.tid !== undefined) this.tid = reply.tid;
      job.wall0 = performance.now();
      job.cpu0 = reply.cpuMs;
      this.armPredict(job, this.timeoutMs);
      this.emit('started');
      return;
    }
    clearTimeout(this.timer);
    this.current = undefined;
    if (reply.error !== undefined) {
      this.counts_.failed++;
      logShadowError(job, `shadow prediction failed (${reply.error})`, reply.ms ?? 0);
    } else {
      this.cutoffs = 0;
      this.counts_.predicted++;
      logShadowOk(job, reply);
    }
    this.pump();
  }

  private armPredict(job: Job, ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onPredictDeadline(job), Math.max(10, ms));
    this.timer.unref();
  }

  /**
   * The prediction's wall-clock deadline passed: a timeout if the thread used its CPU budget (or
   * its CPU time cannot be read), starved if it had too little CPU for too long, else wait on.
   */
  private onPredictDeadline(job: Job): void {
    if (this.current !== job) return;
    const cpu = this.tid !== undefined && job.cpu0 !== undefined ? threadCpuMs(this.tid) : undefined;
    if (cpu === undefined) return this.onTimeout(job, this.timeoutMs, 'predict');
    const used = cpu - job.cpu0!;
    if (used >= this.timeoutMs) return this.onTimeout(job, this.timeoutMs, 'predict');
    const waited = performance.now() - job.wall0!;
    if (waited >= this.starvedAfterMs) {
      this.counts_.starved++;
      this.current = undefined;
      this.warn(
        `the worker got ${Math.round(used)} ms of CPU in ${Math.round(waited)} ms (the machine is too busy); the prediction was dropped, not counted against deployed model ${job.req.candidate.deployedModelId}`,
      );
      this.restart();
      return;
    }
    this.armPredict(job, Math.min(this.timeoutMs - used, this.starvedAfterMs - waited));
  }

  private onTimeout(job: Job, ms: number, what: string): void {
    if (this.current !== job) return;
    this.counts_.timedOut++;
    this.current = undefined;
    logShadowError(job, `shadow prediction timed out (did not ${what} within ${ms} ms)`, ms);
    this.warn(`deployed model ${job.req.candidate.deployedModelId} did not ${what} within ${ms} ms`);
    this.restart();
  }

  private onWorkerGone(w: Worker, why: string): void {
    if (w !== this.worker) return;
    this.worker = undefined;
    const job = this.current;
    this.current = undefined;
    clearTimeout(this.timer);
    if (job) {
      this.counts_.failed++;
      logShadowError(job, `shadow prediction failed (${why})`, 0);
    }
    this.warn(why);
    // A worker that dies (out of memory on a huge model, a crash) is backed off like a hung one.
    this.backOff();
  }

  /** Terminates the worker (it may be stuck in a loop) and carries on with a fresh one after a back-off. */
  private restart(): void {
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
    this.backOff();
  }

  /**
   * Skips what is queued (it would wait the back-off behind a candidate known to hang) and
   * starts no worker until the back-off is over.
   */
  private backOff(): void {
    if (this.closed) return;
    this.cutoffs++;
    this.counts_.skipped += this.queue.length;
    this.queue.length = 0;
    const ms = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (this.cutoffs - 1));
    clearTimeout(this.backoff);
    this.backoff = setTimeout(() => {
      this.backoff = undefined;
      this.emit('resumed');
      this.pump();
    }, ms);
    this.backoff.unref();
    this.emit('cutoff');
    this.pump();
  }

  private warn(why: string): void {
    const now = performance.now();
    if (now - this.lastWarn < WARN_EVERY_MS) return;
    this.lastWarn = now;
    const c = this.counts();
    this.warnLine(
      `shadow: ${why}; so far ${c.predicted} predicted, ${c.failed} failed, ${c.timedOut} timed out, ${c.skipped} skipped. Answered requests are not affected.`,
    );
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
    this.emit('idle');
  }
}
