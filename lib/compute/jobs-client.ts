/**
 * The Vertex AI JobService client (REST fallback, Application Default Credentials), with the
 * retry lockstep wants around each call: quota (429 RESOURCE_EXHAUSTED) and unavailability
 * (503 UNAVAILABLE) are retried with exponential backoff; anything else surfaces at once (a
 * caller may widen that: job creation also retries deadlines and dropped connections, after
 * looking the job up, see job-submit.ts).
 * `LOCKSTEP_VERTEX_ENDPOINT` (`http://127.0.0.1:PORT`) points the client at a local server.
 */
import fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import type { v1, protos } from '@google-cloud/aiplatform';
import type protobufjs from 'protobufjs';
import { UsageError } from '../errors.ts';
import { serviceProtos, type ProtoNode } from './service-protos.ts';

export type JobServiceClient = InstanceType<typeof v1.JobServiceClient>;
export type CustomJob = protos.google.cloud.aiplatform.v1.ICustomJob;
export type BatchPredictionJob = protos.google.cloud.aiplatform.v1.IBatchPredictionJob;

const require = createRequire(import.meta.url);

const CLIENT_MODULE = '@google-cloud/aiplatform/build/src/v1/job_service_client.js';
const PROTOS_MODULE = '@google-cloud/aiplatform/build/protos/protos.json';
/** google-gax's google.rpc types (Status and the error details: ErrorInfo, RetryInfo, ...), from its build/src. */
const STATUS_PROTOS = '../protos/status.json';

const gaxRequire = createRequire(require.resolve('google-gax'));

let jobProtos: ProtoNode | undefined;

/**
 * The JobService client module alone, holding the protos of JobService alone. The package's
 * index loads every service of v1 and v1beta1 and the 16 MB static protos module (3.5-4 s of
 * start-up on a loaded 2-core machine); the client module alone still resolves all 3,335 types
 * of the JSON bundle it requires when a client is constructed (about 1 s). So the bundle is
 * handed to it cut to the 116 types JobService reaches (lib/compute/service-protos.ts): the
 * client's `require` of the bundle finds the cut one in the module cache, which is put back
 * right after, so any other client of the package still loads the whole bundle.
 */
function jobServiceModule(): { JobServiceClient: typeof v1.JobServiceClient } {
  const clientPath = require.resolve(CLIENT_MODULE);
  const protosPath = require.resolve(PROTOS_MODULE);
  if (!require.cache[clientPath]) {
    const previous = require.cache[protosPath];
    const bundle = (previous?.exports ?? JSON.parse(fs.readFileSync(protosPath, 'utf8'))) as ProtoNode;
    jobProtos = withErrorDetails(
      serviceProtos(bundle, 'google.cloud.aiplatform.v1.JobService', 'google.cloud.aiplatform'),
    );
    const cut = new Module(protosPath);
    cut.filename = protosPath;
    cut.exports = jobProtos;
    cut.loaded = true;
    require.cache[protosPath] = cut;
    try {
      return require(clientPath);
    } finally {
      if (previous) require.cache[protosPath] = previous;
      else delete require.cache[protosPath];
    }
  }
  return require(clientPath);
}

/**
 * `bundle` with google-gax's google.rpc error details beside its google.rpc.Status: a job's
 * `error` (a Status) packs them in `details` as google.protobuf.Any, whose type must be in the
 * client's protos for the response to decode at all (the package's own bundle has Status only,
 * so a failed job with an ErrorInfo made getCustomJob throw instead of returning the job).
 */
function withErrorDetails(bundle: ProtoNode): ProtoNode {
  const rpc = (gaxRequire(STATUS_PROTOS) as ProtoNode).nested!.google!.nested!.rpc!;
  const google = bundle.nested!.google!;
  const own = google.nested!.rpc;
  const merged: ProtoNode = { ...rpc, ...own, nested: { ...rpc.nested, ...own?.nested } };
  return {
    ...bundle,
    nested: { ...bundle.nested, google: { ...google, nested: { ...google.nested, rpc: merged } } },
  };
}

let wholeRoot: protobufjs.Root | undefined;

/**
 * Makes `root` (the cut protos a client holds) find any type of the package's whole bundle when
 * asked by name: a google.protobuf.Any (in a Status' details, an operation's metadata) may pack
 * a type of the package that JobService's fields never reach, and an Any whose type is not
 * found fails the whole response. The whole bundle is loaded then, once, and only then.
 */
function lookUpWhole(root: protobufjs.Root): void {
  const marked = root as protobufjs.Root & { lockstepWhole?: true };
  if (marked.lockstepWhole) return;
  marked.lockstepWhole = true;
  const own = root.lookupType.bind(root);
  root.lookupType = (path: string | string[]) => {
    try {
      return own(path);
    } catch (err) {
      if (!wholeRoot) {
        const protobuf = gaxRequire('protobufjs') as typeof protobufjs;
        const bundle = JSON.parse(fs.readFileSync(require.resolve(PROTOS_MODULE), 'utf8')) as ProtoNode;
        wholeRoot = protobuf.Root.fromJSON(withErrorDetails(bundle) as protobufjs.INamespace);
      }
      try {
        return wholeRoot.lookupType(path);
      } catch {
        throw err;
      }
    }
  };
}

let jobStateNames: string[] | undefined;

/** JobState enum names by number, from the protos the client itself loads. */
function jobStateName(n: number): string | undefined {
  if (!jobStateNames) {
    const json = (jobProtos ?? require(PROTOS_MODULE)) as ProtoNode;
    const v1 = json.nested!.google!.nested!.cloud!.nested!.aiplatform!.nested!.v1!;
    const values = v1.nested!.JobState!.values!;
    jobStateNames = [];
    for (const [k, v] of Object.entries(values)) jobStateNames[v] = k;
  }
  return jobStateNames[n];
}

/**
 * `LOCKSTEP_VERTEX_ENDPOINT` (`http://127.0.0.1:PORT`): every Vertex AI client of this process
 * talks to that server instead of Google's. The one reader of that variable.
 */
export function vertexEndpointOverride(): string | undefined {
  return process.env.LOCKSTEP_VERTEX_ENDPOINT || undefined;
}

/**
 * How long to wait between polls of a Vertex AI job, in ms: `LOCKSTEP_VERTEX_POLL_MS`, else 10 s.
 * The one reader of that variable; anything but a positive number is a usage error (NaN would
 * make every wait zero, a busy loop against the API).
 */
export function vertexPollMs(): number {
  const raw = process.env.LOCKSTEP_VERTEX_POLL_MS;
  if (raw === undefined) return 10_000;
  const ms = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(ms) || ms <= 0)
    throw new UsageError(
      `LOCKSTEP_VERTEX_POLL_MS: expected a positive number of milliseconds, got "${raw}". Set it to e.g. 10000, or unset it.`,
    );
  return ms;
}

/** A client for `region`, or for `LOCKSTEP_VERTEX_ENDPOINT` when set. */
export function jobServiceClient(region: string): JobServiceClient {
  const client = newJobServiceClient(region);
  lookUpWhole((client as unknown as { _protos: protobufjs.Root })._protos);
  return client;
}

function newJobServiceClient(region: string): JobServiceClient {
  const { JobServiceClient } = jobServiceModule();
  const local = vertexEndpointOverride();
  if (local) {
    const u = new URL(local);
    return new JobServiceClient({
      apiEndpoint: u.hostname,
      port: Number(u.port),
      protocol: u.protocol.replace(/:$/, ''),
      fallback: true,
      authClient: placeholderAuth(),
    } as ConstructorParameters<typeof v1.JobServiceClient>[0]);
  }
  return new JobServiceClient({ apiEndpoint: `${region}-aiplatform.googleapis.com`, fallback: true });
}

/** A local endpoint takes no credentials; google-gax still wants an auth client with a token. */
function placeholderAuth(): unknown {
  const { OAuth2Client } = gaxRequire('google-auth-library');
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'local', expiry_date: Date.now() + 24 * 3_600_000 });
  return client;
}

/** The job state's name (`JOB_STATE_RUNNING`), whichever enum encoding the response used. */
export function jobState(job: { state?: unknown }): string {
  const s = job.state;
  if (typeof s === 'number') return jobStateName(s) ?? String(s);
  return typeof s === 'string' ? s : 'JOB_STATE_UNSPECIFIED';
}

export const TERMINAL_STATES = new Set([
  'JOB_STATE_SUCCEEDED',
  'JOB_STATE_FAILED',
  'JOB_STATE_CANCELLED',
  'JOB_STATE_EXPIRED',
  'JOB_STATE_PARTIALLY_SUCCEEDED',
]);

/** True for quota and transient errors (gRPC codes 8 and 14, HTTP 429 and 503). */
export function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 8 || code === 14 || code === 429 || code === 503;
}

/** Connection errors after which the request may have reached the server (node and gaxios codes). */
const DROPPED = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);

/**
 * True when a failed call may still have taken effect: 503 UNAVAILABLE and 504 / gRPC 4
 * DEADLINE_EXCEEDED can come from the front end after the backend acted, and a connection that
 * dropped mid-request may have delivered it. Quota (429 RESOURCE_EXHAUSTED) and 4xx answers are
 * refusals before anything was done.
 */
export function mayHaveActed(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (code === 14 || code === 503 || code === 4 || code === 504) return true;
  return typeof code === 'string' && DROPPED.has(code);
}

/**
 * One line for an API error: the REST fallback's errors carry the whole JSON answer as their
 * message (`{"error":{"code":503,"message":...,"status":"UNAVAILABLE"}}`); that becomes
 * `503 UNAVAILABLE: <message>`. Any other error gives its message's first line.
 */
export function apiErrorLine(err: unknown): string {
  const text = String((err as Error)?.message ?? err);
  try {
    const e = (JSON.parse(text) as { error?: { code?: number; status?: string; message?: string } }).error;
    if (e?.message) return [e.code, e.status].filter(Boolean).join(' ') + ': ' + e.message.split('\n')[0];
  } catch {
    // not a JSON answer
  }
  return text.split('\n')[0]!;
}

export interface RetryOptions {
  /** Attempts in all (default 6). */
  attempts?: number;
  /** Which errors are retried (default `isRetryable`: quota and unavailability). */
  retryable?: (err: unknown) => boolean;
  /** First wait in ms, doubled each time (default 1000; LOCKSTEP_VERTEX_RETRY_MS overrides). */
  baseMs?: number;
  signal?: AbortSignal;
  onRetry?: (err: unknown, waitMs: number) => void;
}

/** Calls `fn`, retrying quota and transient errors with exponential backoff and jitter. */
export async function withRetry<T>(fn: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const attempts = options.attempts ?? 6;
  const base = options.baseMs ?? Number(process.env.LOCKSTEP_VERTEX_RETRY_MS ?? 1000);
  const retryable = options.retryable ?? isRetryable;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !retryable(err) || options.signal?.aborted) throw err;
      const wait = Math.round(base * 2 ** (i - 1) * (0.75 + Math.random() * 0.5));
      options.onRetry?.(err, wait);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}
