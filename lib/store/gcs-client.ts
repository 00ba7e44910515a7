/**
 * The one place a `@google-cloud/storage` client is made, so every GCS path (the remote, plain
 * object access, the serving container's model) reaches the same endpoint the same way.
 *
 * Endpoint: an explicit `apiEndpoint` (a remote's `endpoint` setting, like DVC's `endpointurl`),
 * else `LOCKSTEP_GCS_ENDPOINT`, else `STORAGE_EMULATOR_HOST`, else Google's. The client's own handling of
 * `STORAGE_EMULATOR_HOST` drops `/storage/v1` from JSON-API paths (googleapis/nodejs-storage#1314),
 * which real emulators and private endpoints refuse; so the variable is read here and handed to
 * the client as `apiEndpoint`, and the client never sees it.
 *
 * Media downloads go through `openMedia`, a plain HTTP request on the client's endpoint and
 * credentials, because the client's read stream never reports a connection that closes mid-body
 * (its fetch layer pipes the response without its errors): here the response itself says so.
 */
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import type { Storage, StorageOptions } from '@google-cloud/storage';

export interface StorageClientOptions {
  /** Endpoint URL or host (`http://127.0.0.1:4443`, `storage.example.p.googleapis.com`). */
  apiEndpoint?: string;
  projectId?: string;
  /** Send credentials to a custom endpoint too (default: yes unless it is a loopback address or
   * came from STORAGE_EMULATOR_HOST, where emulators take none). */
  useAuthWithCustomEndpoint?: boolean;
  /** Extra client options (auth client, retry policy). */
  storageOptions?: StorageOptions;
}

/**
 * `LOCKSTEP_GCS_ENDPOINT`: points every gs:// client of this process at another JSON-API
 * endpoint (a local fake); the jobs lockstep runs on Vertex AI inherit it from their
 * environment. The one reader of that variable.
 */
export function gcsEndpointOverride(): string | undefined {
  return process.env.LOCKSTEP_GCS_ENDPOINT || undefined;
}

/** The endpoint the clients use, and whether it came from STORAGE_EMULATOR_HOST. */
export function resolveEndpoint(apiEndpoint?: string): { endpoint?: string; emulator: boolean } {
  if (apiEndpoint) return { endpoint: apiEndpoint, emulator: false };
  const own = gcsEndpointOverride();
  if (own) return { endpoint: own, emulator: false };
  const env = process.env.STORAGE_EMULATOR_HOST;
  return env ? { endpoint: env, emulator: true } : { emulator: false };
}

function isLoopback(endpoint: string): boolean {
  try {
    const host = new URL(/^[a-z]+:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`).hostname;
    return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
  } catch {
    return false;
  }
}

/** Builds a Storage client on the resolved endpoint (`StorageCtor` is passed in so callers can
 * keep the client library out of start-up with a dynamic import). */
export function createStorage(StorageCtor: typeof Storage, options: StorageClientOptions = {}): Storage {
  const { endpoint, emulator } = resolveEndpoint(options.apiEndpoint);
  const auth =
    options.useAuthWithCustomEndpoint ?? (endpoint !== undefined && !emulator && !isLoopback(endpoint));
  const config: StorageOptions = {
    ...options.storageOptions,
    // A client on the override needs no real project (there is none behind a local fake).
    ...(options.projectId
      ? { projectId: options.projectId }
      : !options.apiEndpoint && gcsEndpointOverride()
        ? { projectId: 'local' }
        : {}),
    ...(endpoint ? { apiEndpoint: endpoint } : {}),
    ...(endpoint && auth ? { useAuthWithCustomEndpoint: true } : {}),
  };
  const saved = process.env.STORAGE_EMULATOR_HOST;
  // The constructor is the only reader that matters (it fixes the JSON-API base URL).
  if (saved !== undefined) delete process.env.STORAGE_EMULATOR_HOST;
  try {
    return new StorageCtor(config);
  } finally {
    if (saved !== undefined) process.env.STORAGE_EMULATOR_HOST = saved;
  }
}

interface StorageInternals {
  apiEndpoint: string;
  customEndpoint: boolean;
  useAuthWithCustomEndpoint?: boolean;
  authClient: { getRequestHeaders(url?: string): Promise<unknown> };
}

/** Where media requests go and how they authenticate, taken from a client made by createStorage. */
export class MediaClient {
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly internals: StorageInternals;

  constructor(storage: Storage) {
    this.internals = storage as unknown as StorageInternals;
    this.base = new URL(this.internals.apiEndpoint.replace(/\/+$/, '') + '/');
    this.agent =
      this.base.protocol === 'http:'
        ? new http.Agent({ keepAlive: true })
        : new https.Agent({ keepAlive: true });
  }

  private async headers(url: string): Promise<Record<string, string>> {
    const { customEndpoint, useAuthWithCustomEndpoint, authClient } = this.internals;
    if (customEndpoint && !useAuthWithCustomEndpoint) return {};
    const raw = await authClient.getRequestHeaders(url);
    const out: Record<string, string> = {};
    if (raw instanceof Headers) raw.forEach((v, k) => (out[k] = v));
    else for (const [k, v] of Object.entries((raw ?? {}) as Record<string, unknown>)) out[k] = String(v);
    return out;
  }

  /**
   * Starts a media download of `name`, from byte `start`, pinned to `generation` when given.
   * Resolves with the response once its headers arrive (any status: the caller reads errors);
   * the body is the raw response, which errors when the connection closes before its end.
   */
  async open(
    bucket: string,
    name: string,
    options: { generation?: string; start?: number; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<http.IncomingMessage> {
    const url = new URL(
      `storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`,
      this.base,
    );
    url.searchParams.set('alt', 'media');
    if (options.generation) url.searchParams.set('generation', options.generation);
    const headers: Record<string, string> = {
      ...(await this.headers(url.toString())),
      'accept-encoding': 'identity',
      'cache-control': 'no-store',
    };
    if (options.start && options.start > 0) headers.range = `bytes=${options.start}-`;
    const lib = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = lib.request(url, { method: 'GET', headers, agent: this.agent, signal: options.signal });
      // Until headers arrive, silence this long fails the request (a transient error).
      if (options.timeoutMs)
        req.setTimeout(options.timeoutMs, () =>
          req.destroy(Object.assign(new Error('no response'), { code: 'ETIMEDOUT' })),
        );
      req.on('response', (res) => {
        req.setTimeout(0);
        resolve(res);
      });
      req.on('error', reject);
      req.end();
    });
  }

  /**
   * Uploads `data` as object `name` in one multipart request (the JSON API's
   * `uploadType=multipart`: the object resource, then the bytes), with `ifGenerationMatch` when
   * given. Resolves with the stored object's resource; rejects with the service's status as
   * `code` (412 when the precondition failed, 400 when the declared hashes do not match the
   * bytes) or with the connection's error. One attempt: the caller retries. The storage client's
   * own `file.save` does the same request through several layers of streams and retry wrappers,
   * about 3 ms of CPU per object here against well under 1 ms this way, which for the hundreds of
   * small objects of a stage's inputs was most of pushing them.
   */
  async uploadMultipart(
    bucket: string,
    name: string,
    data: Buffer,
    resource: Record<string, unknown>,
    options: { ifGenerationMatch?: number; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Record<string, unknown>> {
    const url = new URL(`upload/storage/v1/b/${encodeURIComponent(bucket)}/o`, this.base);
    url.searchParams.set('uploadType', 'multipart');
    url.searchParams.set('name', name);
    if (options.ifGenerationMatch !== undefined)
      url.searchParams.set('ifGenerationMatch', String(options.ifGenerationMatch));
    const boundary = `lockstep-${randomBytes(12).toString('hex')}`;
    const contentType = String(resource.contentType ?? 'application/octet-stream');
    const head = Buffer.from(
      `--${boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n` +
        `${JSON.stringify({ ...resource, name })}\r\n` +
        `--${boundary}\r\ncontent-type: ${contentType}\r\n\r\n`,
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const headers: Record<string, string> = {
      ...(await this.headers(url.toString())),
      'content-type': `multipart/related; boundary=${boundary}`,
      'content-length': String(head.length + data.length + tail.length),
      'accept-encoding': 'identity',
    };
    const lib = url.protocol === 'http:' ? http : https;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = lib.request(url, { method: 'POST', headers, agent: this.agent, signal: options.signal });
      // Silence this long (sending, waiting for the answer or reading it) fails the request (a
      // transient error): the timer stays on until the answer's body has been read, so a server
      // that sends headers and then nothing cannot hang the upload.
      req.setTimeout(options.timeoutMs ?? 60_000, () =>
        req.destroy(Object.assign(new Error('no response'), { code: 'ETIMEDOUT' })),
      );
      req.on('response', resolve);
      req.on('error', reject);
      req.write(head);
      req.write(data);
      req.end(tail);
    });
    const status = res.statusCode ?? 0;
    if (status < 200 || status >= 300) throw await responseError(res);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
  }

  /**
   * Where a saved resumable-upload session stands, asked with an empty PUT whose Content-Range
   * names only the total size: `incomplete` with the bytes the service holds (308),
   * `finished` (200/201: the upload completed, whether or not its object still exists), or `gone`
   * (404/410, or a URI that does not belong to this endpoint, which is never sent credentials).
   */
  async sessionStatus(
    uri: string,
    size: number,
  ): Promise<{ state: 'incomplete'; received: number } | { state: 'finished' | 'gone' }> {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      return { state: 'gone' };
    }
    if (url.origin !== this.base.origin) return { state: 'gone' };
    const headers = {
      ...(await this.headers(url.toString())),
      'content-length': '0',
      'content-range': `bytes */${size}`,
    };
    const lib = url.protocol === 'http:' ? http : https;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = lib.request(url, { method: 'PUT', headers, agent: this.agent });
      req.setTimeout(60_000, () =>
        req.destroy(Object.assign(new Error('no response'), { code: 'ETIMEDOUT' })),
      );
      req.on('response', resolve);
      req.on('error', reject);
      req.end();
    });
    const status = res.statusCode ?? 0;
    if (status === 308) {
      res.resume();
      const range = /^bytes=0-(\d+)$/.exec(String(res.headers.range ?? ''));
      return { state: 'incomplete', received: range ? Number(range[1]) + 1 : 0 };
    }
    if (status === 200 || status === 201) {
      res.resume();
      return { state: 'finished' };
    }
    if (status === 404 || status === 410) {
      res.resume();
      return { state: 'gone' };
    }
    throw await responseError(res);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Reads a (small) error body and returns an error carrying the status, like the client's. */
export async function responseError(res: http.IncomingMessage): Promise<Error & { code: number }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res) {
      if (size < 64 * 1024) chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } catch {
    /* the status is what matters */
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  let message = text || `HTTP ${res.statusCode}`;
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') message = body.error.message;
  } catch {
    /* not JSON */
  }
  return Object.assign(new Error(message), { code: res.statusCode ?? 0 });
}
