/**
 * Log shipping: copies the prediction log files this server process wrote to a
 * `gs://bucket/prefix`, as `<prefix>/<instance>/<file name>`, so that monitoring and the canary
 * (which read every `*.jsonl` under the prefix) see traffic served on other machines: a Vertex AI
 * container, a VM. Every `intervalMs`, and once more on stop, each file whose size changed since
 * its last upload is uploaded whole (objects are overwritten); a rotated file is uploaded a final
 * time and then never again. Uploads run off the request path, one pass at a time; a failed
 * upload never throws: it prints one line to stderr and is retried at the next tick.
 */
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PredictionLog } from './logs.ts';
import { parseGsUrl, toGcsError, type GsLocation } from '../store/gcs-errors.ts';
import { openGsPrefix, type GsOptions, type GsPrefix } from '../store/gcs-objects.ts';

/** Environment variable naming where the serving container ships its logs. */
export const LOG_URI_ENV = 'LOCKSTEP_LOG_URI';

export interface LogShipperOptions extends GsOptions {
  /** Milliseconds between passes (default 30 000; 0: only on `tick()` / `stop()`). */
  intervalMs?: number;
  /** Folder under the prefix for this server (default `shipInstanceId()`). */
  instance?: string;
  /** Longest one request may take (default 30 000 ms). */
  requestTimeoutMs?: number;
  /** Longest `stop()` waits for the final upload (default 15 000 ms). */
  stopTimeoutMs?: number;
  /** Where problems are reported, one line each (default stderr). */
  warn?: (line: string) => void;
}

export interface ShipResult {
  /** Object names uploaded by this pass. */
  uploaded: string[];
  /** The one-line problem that ended the pass early, if any. */
  failed?: string;
}

/** Keeps `[A-Za-z0-9._-]`, folding anything else into `-` (an object-name path segment). */
export function sanitizeInstance(raw: string): string {
  const clean = raw
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 120);
  return clean || 'server';
}

/**
 * This server's folder under the prefix: `<AIP_DEPLOYED_MODEL_ID>-<hostname>` in a Vertex AI
 * container (replicas of one deployed model share the id, their hostnames differ), else
 * `<hostname>-<pid>-<start stamp>`.
 */
export function shipInstanceId(env: NodeJS.ProcessEnv = process.env, now = new Date()): string {
  const host = os.hostname() || 'host';
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return sanitizeInstance(
    env.AIP_DEPLOYED_MODEL_ID ? `${env.AIP_DEPLOYED_MODEL_ID}-${host}` : `${host}-${process.pid}-${stamp}`,
  );
}

/**
 * Where `lockstep serve` ships logs: `--ship-logs`, else $LOCKSTEP_LOG_URI, else the policy's
 * `logs:` when it is a gs:// prefix (a folder there is where logs are read, not shipped).
 * Undefined when none applies; a malformed gs:// URL throws one line naming its source.
 */
export function resolveShipTarget(sources: {
  flag?: string;
  env?: NodeJS.ProcessEnv;
  policyLogs?: string;
  policyFile?: string;
}): { url: string; where: string } | undefined {
  const env = sources.env ?? process.env;
  let raw: string | undefined;
  let where: string;
  if (sources.flag !== undefined) [raw, where] = [sources.flag, '--ship-logs'];
  else if (env[LOG_URI_ENV]) [raw, where] = [env[LOG_URI_ENV], LOG_URI_ENV];
  else if (sources.policyLogs?.startsWith('gs://'))
    [raw, where] = [sources.policyLogs, `${sources.policyFile ?? 'promotion/<env>.yaml'}: logs`];
  else return undefined;
  return { url: parseGsUrl(raw!, where).url, where };
}

function describeFailure(err: unknown, target: string, everyMs: number): string {
  const e = toGcsError(err, target, 'upload');
  const cause = e.cause as { message?: string; code?: number } | undefined;
  const retry = everyMs > 0 ? `retrying every ${everyMs / 1000} s` : 'retrying at the next pass';
  if (!cause?.message) return `log shipping: ${e.message.split('\n')[0]} (${retry})`;
  const status = cause.code;
  const problem = status ? `upload failed with HTTP ${status}` : 'upload failed';
  let fix: string;
  if (status === 401 || status === 403)
    fix = `Give the server's identity roles/storage.objectUser on the bucket (Application Default Credentials); ${retry}.`;
  else if (status === 404) fix = `Create the bucket or fix the gs:// URL; ${retry}.`;
  else fix = `Predictions are still served and logged locally; ${retry}.`;
  return `log shipping: ${target}: ${problem} (${cause.message}). ${fix}`;
}

export class LogShipper {
  readonly location: GsLocation;
  readonly instance: string;
  readonly intervalMs: number;
  /** Successful uploads so far. */
  uploads = 0;
  private readonly log: PredictionLog;
  private readonly options: LogShipperOptions;
  private prefix: Promise<GsPrefix> | undefined;
  /** Local file -> bytes it had when last uploaded. */
  private readonly shipped = new Map<string, number>();
  /** Rotated files uploaded in full (or gone): never looked at again. */
  private readonly done = new Set<string>();
  private running: Promise<ShipResult> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastProblem = '';

  /** `uri` is a `gs://bucket/prefix`; a malformed one throws a one-line error naming `options.where`. */
  constructor(log: PredictionLog, uri: string, options: LogShipperOptions = {}) {
    this.log = log;
    this.options = options;
    this.location = parseGsUrl(uri, options.where ?? '--ship-logs');
    this.instance = options.instance ? sanitizeInstance(options.instance) : shipInstanceId();
    this.intervalMs = options.intervalMs ?? 30_000;
  }

  /** `gs://bucket/prefix/<instance>`: where this server's files go. */
  get url(): string {
    return `${this.location.url}/${this.instance}`;
  }

  /** Starts the periodic passes (the timer does not keep the process alive). */
  start(): this {
    if (!this.timer && this.intervalMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.intervalMs);
      this.timer.unref();
    }
    return this;
  }

  /** Runs one pass, or returns the pass already running. Never rejects. */
  tick(): Promise<ShipResult> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Stops the timer, flushes the log and ships what is left (after any pass in flight), waiting
   * at most `stopTimeoutMs`. Never rejects.
   */
  async stop(): Promise<ShipResult> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.log.flush();
    const limit = this.options.stopTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<ShipResult>((resolve) => {
      timer = setTimeout(() => {
        const failed = `log shipping: ${this.url}: the final upload did not finish within ${limit / 1000} s; the last lines are only in ${this.log.dir}. Check the network path to Cloud Storage.`;
        this.report(failed);
        resolve({ uploaded: [], failed });
      }, limit);
    });
    const work = (async () => {
      await this.running;
      return this.tick();
    })();
    try {
      return await Promise.race([work, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private objectName(prefix: GsPrefix, file: string): string {
    return prefix.name(`${this.instance}/${path.basename(file)}`);
  }

  private report(line: string): void {
    if (line === this.lastProblem) return;
    this.lastProblem = line;
    (this.options.warn ?? ((l: string) => process.stderr.write(l + '\n')))(line);
  }

  private openPrefix(): Promise<GsPrefix> {
    const { apiEndpoint, projectId, where } = this.options;
    this.prefix ??= openGsPrefix(this.location.url, {
      apiEndpoint,
      projectId,
      where,
      storageOptions: {
        // A failed upload is retried at the next pass, not with backoff inside this one.
        retryOptions: { autoRetry: false },
        ...this.options.storageOptions,
      },
    }).catch((err: unknown) => {
      this.prefix = undefined;
      throw err;
    });
    return this.prefix;
  }

  private async pass(): Promise<ShipResult> {
    const uploaded: string[] = [];
    const files = [...this.log.files()];
    const current = files[files.length - 1];
    // Forget files the log no longer lists (retention deleted them), so a long run stays bounded.
    const listed = new Set(files);
    for (const f of this.shipped.keys()) if (!listed.has(f)) this.shipped.delete(f);
    for (const f of this.done) if (!listed.has(f)) this.done.delete(f);
    for (const file of files) {
      if (this.done.has(file)) continue;
      // Only the last file still grows: any other is complete once uploaded.
      const final = file !== current;
      let data: Buffer;
      try {
        const { size } = await fsp.stat(file);
        if (size === this.shipped.get(file)) {
          if (final) this.done.add(file);
          continue;
        }
        data = await fsp.readFile(file);
      } catch {
        // Deleted by retention, or never written (the log reported that itself).
        if (final) this.done.add(file);
        continue;
      }
      // Whole lines only: a read can race an append.
      const end = data.lastIndexOf(0x0a) + 1;
      if (end === 0) {
        if (final) this.done.add(file);
        continue;
      }
      let target = `${this.url}/${path.basename(file)}`;
      try {
        const prefix = await this.openPrefix();
        const name = this.objectName(prefix, file);
        target = `gs://${prefix.loc.bucket}/${name}`;
        await prefix.bucket.file(name).save(data.subarray(0, end), {
          resumable: false,
          contentType: 'application/x-ndjson',
          timeout: this.options.requestTimeoutMs ?? 30_000,
        });
        uploaded.push(name);
      } catch (err) {
        const failed = describeFailure(err, target, this.intervalMs);
        this.report(failed);
        return { uploaded, failed };
      }
      this.uploads++;
      this.shipped.set(file, data.length);
      if (final) this.done.add(file);
    }
    this.lastProblem = '';
    return { uploaded };
  }
}
