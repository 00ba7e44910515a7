/**
 * Prediction logs: one JSON line per prediction under `.lockstep/logs/<env>/predictions-*.jsonl`,
 * rotated by size, read back by the canary controller and the monitoring stage. Each process
 * writes its own file (the name carries the start time and pid) so a server and a CLI `predict`
 * never interleave lines; lines are batched and appended on the next tick so the hot path does
 * no I/O, and `flush()` makes them visible immediately. A process killed with SIGKILL loses at
 * most the lines queued since the last tick (those of the requests answered in the same event
 * loop turn; written lines are in the page cache, not fsynced). The file stays open between
 * flushes; each flush checks that its path still names the open file and starts a new one if
 * it was deleted or moved.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { InputAnomaly } from './endpoint.ts';

export interface PredictionLogEntry {
  /** ISO time the prediction finished. */
  time: string;
  env: string;
  /** Deployed model that answered (absent for requests rejected before routing). */
  deployedModelId?: string;
  /** Model artifact hash (the `out/model` directory hash). */
  modelVersionId?: string;
  /** Hash of the weights (`LoadedModel.id`). */
  modelId?: string;
  /**
   * `ok`; `error`: the model failed (a 5xx); `invalid`: the request was malformed (a 4xx before
   * any model looked at it); `rejected`: the clip failed the answering model's input checks
   * (an error anomaly against its training schema, a 400).
   */
  status: 'ok' | 'error' | 'invalid' | 'rejected';
  label?: string;
  scores?: Record<string, number>;
  /** Raw summary features. */
  summary?: number[];
  latencyMs: number;
  error?: string;
  /** Input check findings for this instance (present on `rejected`, and on `ok` when any). */
  anomalies?: InputAnomaly[];
  /**
   * The stable model's answer to the same instance, when this one was answered by a canary
   * (paired evidence for the canary analysis; not part of the response).
   */
  shadow?: ShadowPrediction;
  /**
   * `shadow`: a shadow step's prediction by the candidate of a request the stable model answered
   * (never returned to the client; `shadow` then holds the stable model's answer). Absent for
   * answered predictions.
   */
  role?: 'shadow';
}

/** True for a shadow step's mirrored prediction (not an answered request). */
export function isShadowEntry(e: PredictionLogEntry): boolean {
  return e.role === 'shadow';
}

/** A second model's prediction of a logged instance. */
export interface ShadowPrediction {
  deployedModelId: string;
  modelVersionId: string;
  label: string;
  scores: Record<string, number>;
}

export interface PredictionLogOptions {
  /** Rotate when the current file would pass this many bytes (default 8 MiB). */
  maxBytes?: number;
  /** Keep at most this many files of this directory, deleting the oldest (default 50). */
  maxFiles?: number;
}

/** `.lockstep/logs/<env>` under a repository root. */
export function predictionLogDir(root: string, env: string): string {
  return path.join(root, '.lockstep', 'logs', env);
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('.', '');
}

export class PredictionLog {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly maxFiles: number;
  private file: string | undefined;
  /** Open append descriptor of `file` (opened on its first append, closed on rotate and close). */
  private fd: number | undefined;
  /** Device and inode of the file `fd` has open, to notice it deleted or moved under us. */
  private ino: { dev: number; ino: number } | undefined;
  private readonly created: string[] = [];
  private bytes = 0;
  private seq = 0;
  private pending: string[] = [];
  private scheduled = false;
  private lastError = '';

  constructor(dir: string, options: PredictionLogOptions = {}) {
    this.dir = dir;
    this.maxBytes = options.maxBytes ?? 8 * 1024 * 1024;
    this.maxFiles = options.maxFiles ?? 50;
  }

  /** Queues one entry; it is appended on the next tick. */
  write(entry: PredictionLogEntry): void {
    this.pending.push(JSON.stringify(entry) + '\n');
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Appends every queued entry now. */
  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const lines = this.pending;
    this.pending = [];
    try {
      this.append(lines);
    } catch (err) {
      // Losing log lines must never take the server down; say so once per problem.
      const msg = `prediction log ${this.dir}: cannot write (${(err as Error).message.split('\n')[0]}). Check disk space and permissions.`;
      if (msg !== this.lastError) process.stderr.write(msg + '\n');
      this.lastError = msg;
      this.closeFd();
      this.file = undefined;
    }
  }

  private append(lines: string[]): void {
    // The file was deleted or moved since it was opened (the directory removed by hand, an
    // external rotation, another process's retention on the same directory): lines written to
    // the open descriptor would reach no reader, so start a new file. One stat per flush.
    if (this.fd !== undefined && !this.stillOurs()) {
      this.closeFd();
      this.file = undefined;
    }
    let chunk = '';
    for (const line of lines) {
      const size = Buffer.byteLength(line);
      if (this.file === undefined || (this.bytes > 0 && this.bytes + size > this.maxBytes)) {
        if (chunk) this.appendChunk(chunk);
        chunk = '';
        this.rotate();
      }
      chunk += line;
      this.bytes += size;
    }
    if (chunk) this.appendChunk(chunk);
  }

  /** One write(2) on the open descriptor: no open and close of the file per flush. */
  private appendChunk(chunk: string): void {
    if (this.fd === undefined) {
      this.fd = fs.openSync(this.file!, 'a');
      const st = fs.fstatSync(this.fd);
      this.ino = { dev: st.dev, ino: st.ino };
    }
    const bytes = Buffer.from(chunk);
    for (let off = 0; off < bytes.length;) off += fs.writeSync(this.fd, bytes, off);
  }

  private stillOurs(): boolean {
    const st = fs.statSync(this.file!, { throwIfNoEntry: false });
    return st !== undefined && st.ino === this.ino?.ino && st.dev === this.ino.dev;
  }

  private closeFd(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fs.closeSync(fd);
    } catch {
      /* already unusable: nothing more to lose */
    }
  }

  private rotate(): void {
    this.closeFd();
    fs.mkdirSync(this.dir, { recursive: true });
    this.seq++;
    this.file = path.join(this.dir, `predictions-${stamp(new Date())}-${process.pid}-${this.seq}.jsonl`);
    this.created.push(this.file);
    // Retention keeps at most maxFiles in the directory, so older names of ours are gone anyway.
    if (this.created.length > this.maxFiles) this.created.splice(0, this.created.length - this.maxFiles);
    this.bytes = 0;
    const files = listLogFiles(this.dir);
    for (const old of files.slice(0, Math.max(0, files.length - this.maxFiles + 1))) {
      fs.rmSync(path.join(this.dir, old), { force: true });
    }
  }

  /**
   * Paths of the files this log created, oldest first; the last one is still being appended to
   * (the others are final). At most `maxFiles`; retention may since have deleted the oldest.
   */
  files(): readonly string[] {
    return this.created;
  }

  /** Flushes and closes the file; the log can still be written afterwards (it reopens it). */
  close(): void {
    this.flush();
    this.closeFd();
  }
}

/** Log file names in a directory, oldest first (names start with the creation time). */
export function listLogFiles(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith('predictions-') && n.endsWith('.jsonl')).sort();
}

/**
 * Reads every entry of a log directory with `time >= since` (ISO or Date), in time order.
 * Torn or malformed lines (a writer killed mid-line) are skipped.
 */
export function readPredictionLogs(
  dir: string,
  options: { since?: string | Date } = {},
): PredictionLogEntry[] {
  const since = options.since === undefined ? undefined : new Date(options.since).getTime();
  const out: PredictionLogEntry[] = [];
  for (const name of listLogFiles(dir)) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(dir, name), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line) continue;
      let entry: PredictionLogEntry;
      try {
        entry = JSON.parse(line) as PredictionLogEntry;
      } catch {
        continue;
      }
      if (since !== undefined && !(new Date(entry.time).getTime() >= since)) continue;
      out.push(entry);
    }
  }
  return out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
