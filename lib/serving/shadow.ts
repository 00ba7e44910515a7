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
 */
import { EventEmitter } from 'node:events';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { DecodedAudio } from '../audio/wav.ts';
import type { PredictionLog } from './logs.ts';
import type { Route } from './router.ts';

export interface ShadowOptions {
  /** Instances waiting for or in the worker at once before new ones are skipped (default 64). */
  maxQueue?: number;
  /** Longest one candidate prediction may run before the worker is terminated and restarted (ms, default 2000). */
  timeoutMs?: number;
  /** Longest the worker may take to start and load a model (ms, default 120 000). */
  loadTimeoutMs?: number;
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
  /** Instances never sent to the candidate: the queue was full, the route has no model directory, or the server stopped. */
  skipped: number;
  /** Worker threads started (the first one included). */
  workersStarted: number;
  /** Instances waiting or in the worker now. */
  queued: number;
}

/** One instance as the answered request saw it. */
export type ShadowInstance = { kind: 'audio'; audio: DecodedAudio } | { kind: 'features'; raw: Float32Array };

/** A request the stable model answered, to mirror to the candidate. */
export interface MirrorRequest {
  env: string;
  log?: PredictionLog;
  candidate: Route;
  stable: Route;
  instances: ShadowInstance[];
  /** The stable model's answers, index for index. */
  answers: { label: string; scores: Record<string, number> }[];
  /** Decode and input checks of the request (shared by both models), added to the first instance's latency. */
  prepMs: number;
}

interface Job {
  id: number;
  req: MirrorRequest;
  index: number;
}

interface Reply {
  id?: number;
  started?: boolean;
  label?: string;
  scores?: Record<string, number>;
  summary?: number[];
  error?: string;
  ms?: number;
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
  private readonly warnLine: (line: string) => void;
  private readonly counts_: Omit<ShadowCounts, 'queued'> = {
    predicted: 0,
    failed: 0,
    timedOut: 0,
    skipped: 0,
    workersStarted: 0,
  };
  private readonly queue: Job[] = [];
  private worker: Worker | undefined;
  /** The port to the current worker (see shadow-worker.mjs for why not parentPort). */
  private port: MessagePort | undefined;
  private current: Job | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextId = 0;
  private closed = false;
  private lastWarn = -Infinity;
  private idleWaiters: (() => void)[] = [];

  constructor(options: ShadowOptions = {}) {
    super();
    this.maxQueue = options.maxQueue ?? 64;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.loadTimeoutMs = options.loadTimeoutMs ?? 120_000;
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
    if (this.closed || req.candidate.modelDir === undefined || this.counts().queued + n > this.maxQueue) {
      this.counts_.skipped += n;
      const why = this.closed
        ? 'the server is stopping'
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
    const w = this.worker;
    this.worker = undefined;
    this.port?.close();
    this.port = undefined;
    this.notifyIdle();
    if (w) await w.terminate();
  }

  private pump(): void {
    if (this.closed || this.current || this.queue.length === 0) {
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
      this.arm(this.timeoutMs, job, 'predict');
      this.emit('started');
      return;
    }
    clearTimeout(this.timer);
    this.current = undefined;
    if (reply.error !== undefined) {
      this.counts_.failed++;
      this.logError(job, `shadow prediction failed (${reply.error})`, reply.ms ?? 0);
    } else {
      this.counts_.predicted++;
      this.logOk(job, reply);
    }
    this.pump();
  }

  private onTimeout(job: Job, ms: number, what: string): void {
    if (this.current !== job) return;
    this.counts_.timedOut++;
    this.current = undefined;
    this.logError(job, `shadow prediction timed out (did not ${what} within ${ms} ms)`, ms);
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
      this.logError(job, `shadow prediction failed (${why})`, 0);
    }
    this.warn(why);
    this.pump();
  }

  /** Terminates the worker (it may be stuck in a loop) and carries on with a fresh one. */
  private restart(): void {
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
    this.pump();
  }

  private base(job: Job) {
    const c = job.req.candidate;
    return {
      time: new Date().toISOString(),
      env: job.req.env,
      deployedModelId: c.deployedModelId,
      modelVersionId: c.modelVersionId,
      modelId: c.model.id,
      role: 'shadow' as const,
    };
  }

  /** The request's shared preparation counts once, on its first instance (as for the answered one). */
  private latency(job: Job, ms: number): number {
    return round3((job.index === 0 ? job.req.prepMs : 0) + ms);
  }

  private logOk(job: Job, reply: Reply): void {
    const { stable, answers } = job.req;
    job.req.log?.write({
      ...this.base(job),
      status: 'ok',
      label: reply.label,
      scores: reply.scores,
      summary: reply.summary,
      latencyMs: this.latency(job, reply.ms ?? 0),
      shadow: {
        deployedModelId: stable.deployedModelId,
        modelVersionId: stable.modelVersionId,
        label: answers[job.index].label,
        scores: answers[job.index].scores,
      },
    });
  }

  private logError(job: Job, what: string, ms: number): void {
    job.req.log?.write({
      ...this.base(job),
      status: 'error',
      latencyMs: this.latency(job, ms),
      error: `deployed model ${job.req.candidate.deployedModelId}: ${what}.`,
    });
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

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
