/**
 * A local stand-in for the part of the Google Cloud Storage JSON API that `@google-cloud/storage`
 * uses: multipart and resumable uploads, media downloads (with Range), object metadata, listing
 * with prefix / offsets / page tokens, deletes, and `ifGenerationMatch` preconditions. Objects live
 * in memory. Every request is recorded so tests can count them, and faults can be injected per
 * request kind: error statuses (503, 429), dropped connections after N body bytes, corrupted
 * bytes, truncated bodies and slow responses.
 *
 * Reach it with `new Storage({ apiEndpoint: server.url, projectId: 'p' })`.
 */
import http from 'node:http';
import { createHash, createVerify, randomBytes, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { crc32cBase64 } from '../../lib/store/crc32c.ts';

export type RequestKind =
  | 'upload' // POST uploadType=multipart|media
  | 'upload-init' // POST uploadType=resumable (creates a session)
  | 'upload-chunk' // PUT to a resumable session URI
  | 'download' // GET ...?alt=media
  | 'metadata' // GET object resource
  | 'list' // GET bucket object list
  | 'delete'
  | 'signed-get' // GET /<bucket>/<object>?X-Goog-Signature=... (a V4 signed URL)
  | 'patch' // PATCH object metadata
  | 'other';

export interface RecordedRequest {
  method: string;
  kind: RequestKind;
  path: string;
  query: Record<string, string>;
  /** Request body bytes actually received. */
  bytesIn: number;
  /** HTTP status answered; -1 when the connection was dropped before an answer. */
  status: number;
  authorization?: string;
  range?: string;
  contentRange?: string;
  /** Object name the request is about (uploads: known once the session or body says). */
  name?: string;
}

export interface Fault {
  kind: RequestKind;
  /** Only requests whose object name (or list prefix) contains this string. */
  nameIncludes?: string;
  /** Let this many matching requests through before the fault applies (default 0). */
  skip?: number;
  /** How many matching requests it affects (default 1; Infinity for all). */
  times?: number;
  /** Answer with this HTTP status and a JSON error (e.g. 503, 429). */
  status?: number;
  /** Uploads: destroy the socket after reading this many body bytes (what arrived is kept for a
   * resumable session). Downloads: destroy after sending this many body bytes. */
  dropAfterBytes?: number;
  /** Uploads: store the object with one byte flipped. Downloads: flip one byte of the body. */
  corrupt?: boolean;
  /** Downloads: send only this many bytes, with a matching Content-Length (a short, clean body). */
  truncateTo?: number;
  /** Multipart uploads: store the object, send the answer's headers and its first bytes, then
   * nothing more (a connection that goes silent after the service has done the work). */
  stallAnswer?: boolean;
  /** Error message in the JSON body of a `status` answer (default "injected <status>"). */
  message?: string;
  /** Downloads: answer without the x-goog-generation header (a proxy that drops it). */
  noGeneration?: boolean;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Answer only once this settles: a hold the test releases when it has seen what it waits for. */
  holdUntil?: Promise<unknown>;
}

interface StoredObject {
  name: string;
  data: Buffer;
  generation: number;
  contentType: string;
  metadata?: Record<string, string>;
  crc32c: string;
  md5Hash: string;
  created: string;
  /** Bumped by every metadata update (PATCH), like GCS. */
  metageneration: number;
  /** Last data or metadata change. */
  updated: string;
}

interface UploadSession {
  bucket: string;
  name: string;
  resource: Record<string, unknown>;
  ifGenerationMatch?: string;
  chunks: Buffer[];
  received: number;
  done: boolean;
  /** The object resource answered when the upload finished: GCS answers every later request on
   * the session with it (200), even after the object was deleted. */
  finalized?: Record<string, unknown>;
}

const MAX_PAGE = 1000;

/** The object's crc32c as GCS computes it (test/store/crc32c.test.ts checks it against the client library's). */
export function crc32cOf(data: Buffer): string {
  return crc32cBase64(data);
}

export function md5Of(data: Buffer): string {
  return createHash('md5').update(data).digest('base64');
}

function flipByte(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  if (copy.length > 0) copy[Math.floor(copy.length / 2)] ^= 0xff;
  return copy;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * The `errors[].reason` Cloud Storage's JSON API gives with each status (its documented HTTP
 * status and error codes): a 400 is `invalid`, not a backend error; 5xx are `backendError`.
 */
const GCS_ERROR_REASONS: Record<number, string> = {
  400: 'invalid',
  401: 'required',
  403: 'forbidden',
  404: 'notFound',
  409: 'conflict',
  412: 'conditionNotMet',
  429: 'rateLimitExceeded',
  503: 'backendError',
};

export class FakeGcs {
  /** `bucket -> name -> object`; change it only through the methods (they keep the list index). */
  private readonly buckets = new Map<string, Map<string, StoredObject>>();
  readonly requests: RecordedRequest[] = [];
  private faults: (Fault & { seen: number; applied: number })[] = [];
  private sessions = new Map<string, UploadSession>();
  private storeListeners = new Set<(bucket: string, name: string) => void>();
  private generation = 1_700_000_000_000_000;
  private server: http.Server;
  private sockets = new Set<import('node:net').Socket>();
  url = '';
  /** TCP connections accepted (keep-alive reuse keeps this far below the request count). */
  connections = 0;

  constructor() {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.sendError(res, 500, String(err));
        else res.destroy();
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.on('connection', (socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  /** Starts listening on 127.0.0.1 with an ephemeral port. */
  static async start(): Promise<FakeGcs> {
    const fake = new FakeGcs();
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    const { port } = fake.server.address() as AddressInfo;
    fake.url = `http://127.0.0.1:${port}`;
    return fake;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Adds a fault; it applies to the next matching requests. */
  inject(fault: Fault): void {
    this.faults.push({ ...fault, seen: 0, applied: 0 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** How many requests of `kind` (all kinds when omitted) arrived. */
  count(kind?: RequestKind): number {
    return kind ? this.requests.filter((r) => r.kind === kind).length : this.requests.length;
  }

  resetLog(): void {
    this.requests.length = 0;
  }

  object(bucket: string, name: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.get(name);
  }

  /** Stores an object directly (test set-up), with correct hashes; `ageMs` back-dates it. */
  putObject(bucket: string, name: string, data: Buffer, options: { ageMs?: number } = {}): void {
    const obj = this.store(bucket, name, data, {});
    if (options.ageMs) obj.created = obj.updated = new Date(Date.now() - options.ageMs).toISOString();
  }

  /** Back-dates an object's creation and last update (test set-up for retention rules). */
  age(bucket: string, name: string, ageMs: number): void {
    const obj = this.object(bucket, name);
    if (!obj) throw new Error(`fake-gcs: no object ${bucket}/${name}`);
    obj.created = obj.updated = new Date(Date.now() - ageMs).toISOString();
  }

  /** Drops every object, fault and recorded request. */
  reset(): void {
    this.buckets.clear();
    this.version++;
    this.clearFaults();
    this.resetLog();
  }

  deleteObject(bucket: string, name: string): void {
    this.buckets.get(bucket)?.delete(name);
    this.version++;
  }

  /** Flips a byte of a stored object but keeps its recorded hashes: bit rot at rest. */
  rot(bucket: string, name: string): void {
    const obj = this.object(bucket, name);
    if (!obj) throw new Error(`fake-gcs: no object ${bucket}/${name}`);
    obj.data = flipByte(obj.data);
  }

  names(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.keys() ?? [])].sort();
  }

  private sortedCache = new Map<string, { version: number; names: string[] }>();
  private version = 0;

  /** Sorted object names of `bucket`, rebuilt only after a change. */
  private sortedNames(bucket: string): string[] {
    const objects = this.buckets.get(bucket);
    if (!objects) return [];
    const cached = this.sortedCache.get(bucket);
    if (cached && cached.version === this.version) return cached.names;
    const names = [...objects.keys()].sort();
    this.sortedCache.set(bucket, { version: this.version, names });
    return names;
  }

  private store(bucket: string, name: string, data: Buffer, resource: Record<string, unknown>): StoredObject {
    let objects = this.buckets.get(bucket);
    if (!objects) this.buckets.set(bucket, (objects = new Map()));
    const obj: StoredObject = {
      name,
      data,
      generation: ++this.generation,
      contentType: (resource.contentType as string) ?? 'application/octet-stream',
      metadata: resource.metadata as Record<string, string> | undefined,
      crc32c: crc32cOf(data),
      md5Hash: md5Of(data),
      created: new Date().toISOString(),
      metageneration: 1,
      updated: '',
    };
    obj.updated = obj.created;
    objects.set(name, obj);
    this.version++;
    for (const listener of this.storeListeners) listener(bucket, name);
    return obj;
  }

  /** Calls `listener` after each object is stored; returns the function that stops it. */
  onStore(listener: (bucket: string, name: string) => void): () => void {
    this.storeListeners.add(listener);
    return () => this.storeListeners.delete(listener);
  }

  private resource(bucket: string, obj: StoredObject): Record<string, unknown> {
    return {
      kind: 'storage#object',
      id: `${bucket}/${obj.name}/${obj.generation}`,
      name: obj.name,
      bucket,
      generation: String(obj.generation),
      metageneration: String(obj.metageneration),
      contentType: obj.contentType,
      size: String(obj.data.length),
      md5Hash: obj.md5Hash,
      crc32c: obj.crc32c,
      timeCreated: obj.created,
      updated: obj.updated,
      ...(obj.metadata ? { metadata: obj.metadata } : {}),
    };
  }

  private takeFault(kind: RequestKind, name: string): Fault | undefined {
    for (const fault of this.faults) {
      if (fault.kind !== kind) continue;
      if (fault.nameIncludes && !name.includes(fault.nameIncludes)) continue;
      fault.seen++;
      if (fault.seen <= (fault.skip ?? 0)) continue;
      if (fault.applied >= (fault.times ?? 1)) continue;
      fault.applied++;
      return fault;
    }
    return undefined;
  }

  private sendJson(
    res: http.ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=UTF-8',
      'content-length': Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  private sendError(res: http.ServerResponse, status: number, message: string): void {
    const reason = GCS_ERROR_REASONS[status] ?? (status >= 500 ? 'backendError' : 'invalid');
    this.sendJson(res, status, { error: { code: status, message, errors: [{ message, reason }] } });
  }

  /** Reads the request body; with `dropAfter`, destroys the socket once that many bytes arrived. */
  private readBody(
    req: http.IncomingMessage,
    dropAfter?: number,
  ): Promise<{ body: Buffer; dropped: boolean }> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let n = 0;
      let finished = false;
      req.on('data', (chunk: Buffer) => {
        if (finished) return;
        if (dropAfter !== undefined && n + chunk.length >= dropAfter) {
          chunks.push(chunk.subarray(0, dropAfter - n));
          n = dropAfter;
          finished = true;
          req.socket.destroy();
          resolve({ body: Buffer.concat(chunks), dropped: true });
          return;
        }
        chunks.push(chunk);
        n += chunk.length;
      });
      req.on('end', () => {
        if (finished) return;
        finished = true;
        resolve({ body: Buffer.concat(chunks), dropped: false });
      });
      req.on('error', (err) => {
        if (finished) return;
        finished = true;
        if (dropAfter !== undefined) resolve({ body: Buffer.concat(chunks), dropped: true });
        else reject(err);
      });
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams.entries());
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const record: RecordedRequest = {
      method,
      kind: 'other',
      path,
      query,
      bytesIn: 0,
      status: 0,
      authorization: req.headers.authorization,
      range: req.headers.range,
      contentRange: req.headers['content-range'],
    };
    this.requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    // -1 marks a request whose connection was dropped before any answer.
    res.on('close', () => (record.status ||= res.headersSent ? res.statusCode : -1));

    const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(path);
    // Only the JSON API's own path forms, as GCS and its emulators serve them: a client that
    // drops `/storage/v1` (the storage client does with STORAGE_EMULATOR_HOST) gets a 404.
    const objectPath = /^(?:\/download)?\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(path);
    const listPath = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(path);

    let kind: RequestKind = 'other';
    let bucket = '';
    let name = '';
    if (upload) {
      bucket = decodeURIComponent(upload[1]);
      name = query.name ?? '';
      if (method === 'PUT' && query.upload_id) kind = 'upload-chunk';
      else if (method === 'POST' && query.uploadType === 'resumable') kind = 'upload-init';
      else if (method === 'POST') kind = 'upload';
      if (kind === 'upload-chunk') name = this.sessions.get(query.upload_id)?.name ?? '';
    } else if (objectPath) {
      bucket = decodeURIComponent(objectPath[1]);
      name = decodeURIComponent(objectPath[2]);
      if (method === 'GET') kind = query.alt === 'media' ? 'download' : 'metadata';
      else if (method === 'DELETE') kind = 'delete';
      else if (method === 'PATCH') kind = 'patch';
    } else if (method === 'GET' && query['X-Goog-Signature'] !== undefined) {
      const m = /^\/([^/]+)\/(.+)$/.exec(path);
      bucket = m ? decodeURIComponent(m[1]) : '';
      name = m ? decodeURIComponent(m[2]) : '';
      kind = 'signed-get';
    } else if (listPath && method === 'GET') {
      bucket = decodeURIComponent(listPath[1]);
      name = query.prefix ?? '';
      kind = 'list';
    }
    record.kind = kind;
    if (name) record.name = name;

    const fault = this.takeFault(kind, name);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (fault?.holdUntil) await fault.holdUntil.catch(() => undefined);
    if (fault?.status) {
      // Drain the body so the client sees the status rather than a reset.
      const { body } = await this.readBody(req);
      record.bytesIn = body.length;
      this.sendError(res, fault.status, fault.message ?? `injected ${fault.status}`);
      return;
    }

    switch (kind) {
      case 'upload':
        return this.handleMultipart(req, res, record, bucket, query, fault);
      case 'upload-init':
        return this.handleResumableInit(req, res, record, bucket, query);
      case 'upload-chunk':
        return this.handleResumableChunk(req, res, record, query, fault);
      case 'download':
        return this.handleDownload(req, res, bucket, name, query, fault);
      case 'metadata': {
        await this.readBody(req);
        const obj = this.object(bucket, name);
        if (!obj) return this.sendError(res, 404, `No such object: ${bucket}/${name}`);
        return this.sendJson(res, 200, this.resource(bucket, obj));
      }
      case 'delete': {
        await this.readBody(req);
        const obj = this.object(bucket, name);
        if (!obj) return this.sendError(res, 404, `No such object: ${bucket}/${name}`);
        if (
          (query.ifGenerationMatch !== undefined && query.ifGenerationMatch !== String(obj.generation)) ||
          (query.ifMetagenerationMatch !== undefined &&
            query.ifMetagenerationMatch !== String(obj.metageneration))
        )
          return this.sendError(res, 412, 'At least one of the pre-conditions you specified did not hold.');
        this.buckets.get(bucket)?.delete(name);
        this.version++;
        res.writeHead(204).end();
        return;
      }
      case 'patch': {
        const { body } = await this.readBody(req);
        const obj = this.object(bucket, name);
        if (!obj) return this.sendError(res, 404, `No such object: ${bucket}/${name}`);
        if (
          query.ifMetagenerationMatch !== undefined &&
          query.ifMetagenerationMatch !== String(obj.metageneration)
        )
          return this.sendError(res, 412, 'At least one of the pre-conditions you specified did not hold.');
        let patch: Record<string, unknown>;
        try {
          patch = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
        } catch {
          return this.sendError(res, 400, 'Invalid JSON payload');
        }
        if (patch.metadata && typeof patch.metadata === 'object') {
          const next = { ...(obj.metadata ?? {}) };
          for (const [k, v] of Object.entries(patch.metadata as Record<string, unknown>)) {
            if (v === null) delete next[k];
            else next[k] = String(v);
          }
          obj.metadata = next;
        }
        obj.metageneration++;
        obj.updated = new Date().toISOString();
        return this.sendJson(res, 200, this.resource(bucket, obj));
      }
      case 'list':
        await this.readBody(req);
        return this.handleList(res, bucket, query);
      case 'signed-get':
        await this.readBody(req);
        return this.handleSignedGet(req, res, url, bucket, name);
      default:
        await this.readBody(req);
        return this.sendError(res, 404, `fake-gcs does not serve ${method} ${path}`);
    }
  }

  /** Public keys of the service accounts whose V4 signed URLs this fake accepts, by email. */
  readonly signers = new Map<string, KeyObject>();

  /**
   * A V4 signed URL (GOOG4-RSA-SHA256, only the host header signed): the signature is checked
   * against the canonical request the real service rebuilds, the expiry against the clock; a bad
   * signature is 403 SignatureDoesNotMatch, an expired URL 400 ExpiredToken, as the service says.
   */
  private handleSignedGet(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    bucket: string,
    name: string,
  ): void {
    const q = url.searchParams;
    const xml = (status: number, code: string): void => {
      res.writeHead(status, { 'content-type': 'application/xml' }).end(`<Error><Code>${code}</Code></Error>`);
    };
    const [email, date, region, service, term] = (q.get('X-Goog-Credential') ?? '').split('/');
    const key = this.signers.get(email ?? '');
    if (q.get('X-Goog-Algorithm') !== 'GOOG4-RSA-SHA256' || !key || term !== 'goog4_request')
      return xml(400, 'AuthenticationRequired');
    const enc = (v: string) =>
      encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
    // The client signs the endpoint's host name without its port (signer.js: fqdn.hostname).
    const hostname = new URL(`http://${req.headers.host ?? ''}`).hostname;
    const canonicalQuery = [...q.entries()]
      .filter(([k]) => k !== 'X-Goog-Signature')
      .map(([k, v]) => `${enc(k)}=${enc(v)}`)
      .sort()
      .join('&');
    const canonical = [
      'GET',
      url.pathname,
      canonicalQuery,
      `host:${hostname}`,
      '',
      'host',
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const stamp = q.get('X-Goog-Date') ?? '';
    const toSign = [
      'GOOG4-RSA-SHA256',
      stamp,
      `${date}/${region}/${service}/${term}`,
      createHash('sha256').update(canonical).digest('hex'),
    ].join('\n');
    const ok = createVerify('RSA-SHA256')
      .update(toSign)
      .verify(key, Buffer.from(q.get('X-Goog-Signature') ?? '', 'hex'));
    if (!ok) return xml(403, 'SignatureDoesNotMatch');
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
    const start = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : NaN;
    if (!(Date.now() <= start + Number(q.get('X-Goog-Expires')) * 1000)) return xml(400, 'ExpiredToken');
    const obj = this.object(bucket, name);
    if (!obj) return xml(404, 'NoSuchKey');
    res
      .writeHead(200, {
        'content-type': q.get('response-content-type') ?? obj.contentType,
        'content-length': obj.data.length,
      })
      .end(obj.data);
  }

  /** Checks `ifGenerationMatch`; returns false (and answers 412) when it does not hold. */
  private precondition(
    res: http.ServerResponse,
    bucket: string,
    name: string,
    ifGenerationMatch?: string,
  ): boolean {
    if (ifGenerationMatch === undefined) return true;
    const obj = this.object(bucket, name);
    const current = obj ? String(obj.generation) : '0';
    if (current === ifGenerationMatch) return true;
    this.sendError(res, 412, 'At least one of the pre-conditions you specified did not hold.');
    return false;
  }

  /** Like GCS: declared `crc32c` / `md5Hash` in the resource must match the bytes received. */
  private declaredHashMismatch(resource: Record<string, unknown>, data: Buffer): string | undefined {
    if (typeof resource.crc32c === 'string' && resource.crc32c !== crc32cOf(data))
      return `Provided CRC32C "${resource.crc32c}" doesn't match calculated CRC32C "${crc32cOf(data)}".`;
    if (typeof resource.md5Hash === 'string' && resource.md5Hash !== md5Of(data))
      return `Provided MD5 hash "${resource.md5Hash}" doesn't match calculated MD5 hash "${md5Of(data)}".`;
    return undefined;
  }

  private finishUpload(
    res: http.ServerResponse,
    bucket: string,
    name: string,
    resource: Record<string, unknown>,
    data: Buffer,
    ifGenerationMatch: string | undefined,
    corrupt: boolean,
  ): Record<string, unknown> | undefined {
    const stored = corrupt ? flipByte(data) : data;
    const mismatch = this.declaredHashMismatch(resource, stored);
    if (mismatch) {
      this.sendError(res, 400, mismatch);
      return undefined;
    }
    if (!this.precondition(res, bucket, name, ifGenerationMatch)) return undefined;
    const obj = this.store(bucket, name, stored, resource);
    const answer = this.resource(bucket, obj);
    this.sendJson(res, 200, answer);
    return answer;
  }

  private async handleMultipart(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: RecordedRequest,
    bucket: string,
    query: Record<string, string>,
    fault: Fault | undefined,
  ): Promise<void> {
    const { body, dropped } = await this.readBody(req, fault?.dropAfterBytes);
    record.bytesIn = body.length;
    if (dropped) return;
    const contentType = req.headers['content-type'] ?? '';
    const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
    let resource: Record<string, unknown> = {};
    let data = body;
    if (query.uploadType === 'multipart') {
      if (!boundary) return this.sendError(res, 400, 'multipart upload without boundary');
      const parts = splitMultipart(body, boundary);
      if (parts.length < 2) return this.sendError(res, 400, 'multipart upload needs two parts');
      resource = JSON.parse(parts[0].toString('utf8')) as Record<string, unknown>;
      data = parts[1];
    }
    const name = (resource.name as string | undefined) ?? query.name;
    if (name) record.name = name;
    if (!name) return this.sendError(res, 400, 'upload without object name');
    if (fault?.stallAnswer) {
      // The answer's headers and first bytes go out; the rest never does.
      res.end = ((chunk: string) => {
        res.write(chunk.slice(0, 10));
        return res;
      }) as http.ServerResponse['end'];
    }
    this.finishUpload(res, bucket, name, resource, data, query.ifGenerationMatch, !!fault?.corrupt);
  }

  private async handleResumableInit(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: RecordedRequest,
    bucket: string,
    query: Record<string, string>,
  ): Promise<void> {
    const { body } = await this.readBody(req);
    record.bytesIn = body.length;
    const resource = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    const name = (resource.name as string | undefined) ?? query.name;
    if (name) record.name = name;
    if (!name) return this.sendError(res, 400, 'resumable upload without object name');
    if (!this.precondition(res, bucket, name, query.ifGenerationMatch)) return;
    const id = randomBytes(12).toString('hex');
    this.sessions.set(id, {
      bucket,
      name,
      resource,
      ifGenerationMatch: query.ifGenerationMatch,
      chunks: [],
      received: 0,
      done: false,
    });
    const location = `${this.url}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    this.sendJson(res, 200, {}, { location });
  }

  private async handleResumableChunk(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: RecordedRequest,
    query: Record<string, string>,
    fault: Fault | undefined,
  ): Promise<void> {
    const session = this.sessions.get(query.upload_id);
    const { body, dropped } = await this.readBody(req, fault?.dropAfterBytes);
    record.bytesIn = body.length;
    if (!session) return this.sendError(res, 404, `No such upload session "${query.upload_id}"`);
    if (session.finalized) return this.sendJson(res, 200, session.finalized);
    // Content-Range: "bytes a-b/total", "bytes a-b/*" or "bytes */total" (a status query).
    // "bytes a-*/*" streams the rest of an upload of unknown size: the request's end finalizes it.
    const range = /^bytes (\*|(\d+)-(\d+|\*))\/(\*|\d+)$/.exec(
      String(req.headers['content-range'] ?? 'bytes */*'),
    );
    if (!range) return this.sendError(res, 400, `bad Content-Range "${req.headers['content-range']}"`);
    const start = range[2] === undefined ? session.received : Number(range[2]);
    let total = range[4] === '*' ? undefined : Number(range[4]);
    if (range[1] !== '*') {
      if (start > session.received)
        return this.sendError(res, 400, `gap: have ${session.received}, got ${start}`);
      // Keep only bytes beyond what the session already holds (a resend may overlap).
      const fresh = body.subarray(Math.min(body.length, session.received - start));
      session.chunks.push(fresh);
      session.received += fresh.length;
    }
    if (dropped) return;
    if (total === undefined && range[3] === '*') total = session.received;
    if (total !== undefined && session.received >= total && !session.done) {
      const data = Buffer.concat(session.chunks).subarray(0, total);
      session.done = true;
      session.finalized = this.finishUpload(
        res,
        session.bucket,
        session.name,
        session.resource,
        data,
        session.ifGenerationMatch,
        !!fault?.corrupt,
      );
      if (!session.finalized) session.done = false;
      return;
    }
    const headers: Record<string, string> = { 'content-length': '0' };
    if (session.received > 0) headers.range = `bytes=0-${session.received - 1}`;
    res.writeHead(308, headers).end();
  }

  private handleDownload(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    bucket: string,
    name: string,
    query: Record<string, string>,
    fault: Fault | undefined,
  ): void {
    req.resume();
    const obj = this.object(bucket, name);
    if (!obj) return this.sendError(res, 404, `No such object: ${bucket}/${name}`);
    if (query.generation && query.generation !== String(obj.generation))
      return this.sendError(res, 404, `No such object: ${bucket}/${name}#${query.generation}`);
    let body = obj.data;
    let status = 200;
    const headers: Record<string, string | number> = {
      'content-type': obj.contentType,
      'x-goog-hash': `crc32c=${obj.crc32c},md5=${obj.md5Hash}`,
      'x-goog-generation': String(obj.generation),
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(obj.data.length),
      'accept-ranges': 'bytes',
    };
    if (fault?.noGeneration) delete headers['x-goog-generation'];
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), obj.data.length - 1) : obj.data.length - 1;
      if (start >= obj.data.length && obj.data.length > 0) {
        res.writeHead(416, { 'content-range': `bytes */${obj.data.length}` }).end();
        return;
      }
      body = obj.data.subarray(start, end + 1);
      status = 206;
      headers['content-range'] = `bytes ${start}-${end}/${obj.data.length}`;
    }
    if (fault?.corrupt) body = flipByte(body);
    if (fault?.truncateTo !== undefined) body = body.subarray(0, fault.truncateTo);
    headers['content-length'] = body.length;
    res.writeHead(status, headers);
    if (fault?.dropAfterBytes !== undefined) {
      res.write(body.subarray(0, fault.dropAfterBytes), () => setTimeout(() => res.socket?.destroy(), 5));
      return;
    }
    res.end(body);
  }

  private handleList(res: http.ServerResponse, bucket: string, query: Record<string, string>): void {
    const prefix = query.prefix ?? '';
    const max = Math.min(Number(query.maxResults ?? MAX_PAGE) || MAX_PAGE, MAX_PAGE);
    const after = query.pageToken ? Buffer.from(query.pageToken, 'base64url').toString('utf8') : undefined;
    const objects = this.buckets.get(bucket);
    const sorted = this.sortedNames(bucket);
    // Binary search to the first candidate, then walk: a page costs O(log n + page).
    let lo = 0;
    let hi = sorted.length;
    const from = [prefix, query.startOffset ?? '', after ?? ''].reduce((a, b) => (b > a ? b : a));
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid] < from) lo = mid + 1;
      else hi = mid;
    }
    const names: string[] = [];
    for (let i = lo; i < sorted.length && names.length <= max; i++) {
      const n = sorted[i];
      if (!n.startsWith(prefix)) {
        if (n > prefix) break;
        continue;
      }
      if (query.endOffset !== undefined && n >= query.endOffset) break;
      if (after !== undefined && n <= after) continue;
      names.push(n);
    }
    const page = names.slice(0, max);
    // Like GCS, `fields=items(name,size),nextPageToken` trims each item to the listed keys.
    const itemFields = /items\(([^)]*)\)/
      .exec(query.fields ?? '')?.[1]
      ?.split(',')
      .map((f) => f.trim());
    const project = (item: Record<string, unknown>) =>
      itemFields ? Object.fromEntries(itemFields.filter((f) => f in item).map((f) => [f, item[f]])) : item;
    const body: Record<string, unknown> = {
      kind: 'storage#objects',
      items: page.map((n) => project(this.resource(bucket, objects!.get(n)!))),
    };
    if (names.length > max)
      body.nextPageToken = Buffer.from(page[page.length - 1], 'utf8').toString('base64url');
    this.sendJson(res, 200, body);
  }
}

/** Splits a multipart/related body into its parts' bodies (headers stripped). */
function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let pos = body.indexOf(delimiter);
  while (pos !== -1) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, start);
    if (next === -1) break;
    let part = body.subarray(start, next);
    // Strip the CRLF after the delimiter and the CRLF before the next one.
    if (part.subarray(0, 2).toString() === '\r\n') part = part.subarray(2);
    if (part.subarray(part.length - 2).toString() === '\r\n') part = part.subarray(0, part.length - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    parts.push(headerEnd === -1 ? part : part.subarray(headerEnd + 4));
    pos = next;
  }
  return parts;
}
