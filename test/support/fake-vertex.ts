/**
 * A local fake of the Vertex AI REST API (the subset lockstep uses), for the real
 * `@google-cloud/aiplatform` clients in REST fallback mode. Every request body is checked
 * against the request message in the protos shipped with the package (loaded with protobufjs):
 * unknown fields, wrong JSON types and malformed values are rejected with 400, like the real
 * API; then `Type.fromObject` + `Type.verify` run on the converted message. Long-running
 * operations finish after a configurable number of polls; faults can be injected per method.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { checkAlias, checkLabels, modelRegistryRoutes, type FakeEvaluation } from './fake-vertex-registry.ts';

const require = createRequire(import.meta.url);
const aiplatformDir = require.resolve('@google-cloud/aiplatform').replace(/build\/src\/index\.js$/, '');
const protobuf = createRequire(aiplatformDir + 'package.json')('protobufjs') as typeof import('protobufjs');
const root = protobuf.Root.fromJSON(require(aiplatformDir + 'build/protos/protos.json'));
const V1 = 'google.cloud.aiplatform.v1.';

/** A google-auth-library client (the version google-gax uses) with a fake token, for tests. */
export function fakeAuthClient(): unknown {
  const gaxRequire = createRequire(require.resolve('google-gax'));
  const { OAuth2Client } = gaxRequire('google-auth-library');
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'fake-token', expiry_date: Date.now() + 3_600_000 });
  return client;
}

const ANY_JSON = new Set(['google.protobuf.Value', 'google.protobuf.Struct', 'google.protobuf.ListValue']);
const STRING_WKT = new Set([
  'google.protobuf.Timestamp',
  'google.protobuf.Duration',
  'google.protobuf.FieldMask',
]);

/** Strict proto3 JSON check of `obj` against `type`; returns the first problem. */
export function checkMessage(
  type: import('protobufjs').Type,
  obj: unknown,
  where: string,
): string | undefined {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj))
    return `${where}: expected an object for ${type.fullName}`;
  for (const [key, value] of Object.entries(obj as Record<string, unknown>)) {
    const field = type.fields[key] ?? Object.values(type.fields).find((f) => f.options?.json_name === key);
    if (!field) return `${where}.${key}: unknown field of ${type.fullName.slice(1)}`;
    field.resolve();
    const at = `${where}.${key}`;
    if (field.map) {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${at}: expected a map`;
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const p = checkValue(field, v, `${at}[${k}]`);
        if (p) return p;
      }
    } else if (field.repeated) {
      if (!Array.isArray(value)) return `${at}: expected a list`;
      for (const [i, v] of value.entries()) {
        const p = checkValue(field, v, `${at}[${i}]`);
        if (p) return p;
      }
    } else {
      const p = checkValue(field, value, at);
      if (p) return p;
    }
  }
  return undefined;
}

function checkValue(field: import('protobufjs').Field, v: unknown, at: string): string | undefined {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) {
    const name = rt.fullName.slice(1);
    if (ANY_JSON.has(name)) return undefined;
    if (STRING_WKT.has(name))
      return typeof v === 'string' ? undefined : `${at}: expected a string for ${name}`;
    if (name === 'google.protobuf.Any') {
      return typeof v === 'object' && v !== null && '@type' in v
        ? undefined
        : `${at}: expected an Any with @type`;
    }
    return checkMessage(rt, v, at);
  }
  if (rt instanceof protobuf.Enum) {
    return (typeof v === 'number' && Object.values(rt.values).includes(v)) ||
      (typeof v === 'string' && v in rt.values)
      ? undefined
      : `${at}: not a value of enum ${rt.name}`;
  }
  switch (field.type) {
    case 'string':
      return typeof v === 'string' ? undefined : `${at}: expected a string`;
    case 'bool':
      return typeof v === 'boolean' ? undefined : `${at}: expected a boolean`;
    case 'bytes':
      return typeof v === 'string' && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v)
        ? undefined
        : `${at}: expected base64 bytes`;
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return (typeof v === 'string' && /^-?\d+$/.test(v)) || Number.isInteger(v)
        ? undefined
        : `${at}: expected an integer`;
    case 'int32':
    case 'uint32':
    case 'sint32':
    case 'fixed32':
    case 'sfixed32':
      return Number.isInteger(v) ? undefined : `${at}: expected an int32`;
    default:
      return typeof v === 'number' ? undefined : `${at}: expected a number`;
  }
}

/** Removes fields whose type protobufjs cannot convert from proto3 JSON (well-known types). */
function stripWkt(type: import('protobufjs').Type, obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const field = type.fields[key];
    if (!field) continue;
    field.resolve();
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) {
      if (rt.fullName.startsWith('.google.protobuf.')) continue;
      if (field.map) {
        out[key] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, stripWkt(rt, v)]));
      } else if (field.repeated) out[key] = (value as Record<string, unknown>[]).map((v) => stripWkt(rt, v));
      else out[key] = stripWkt(rt, value as Record<string, unknown>);
    } else out[key] = value;
  }
  return out;
}

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly status: string,
    message: string,
  ) {
    super(message);
  }
}

/** The google.rpc status name the real API answers with an HTTP status. */
function statusOf(code: number): string {
  const names: Record<number, string> = {
    400: 'INVALID_ARGUMENT',
    403: 'PERMISSION_DENIED',
    404: 'NOT_FOUND',
    429: 'RESOURCE_EXHAUSTED',
    503: 'UNAVAILABLE',
    504: 'DEADLINE_EXCEEDED',
  };
  return names[code] ?? 'INTERNAL';
}

/** Thrown by a route to drop the connection without an answer (the client sees a reset). */
export class DroppedConnection extends Error {}

/** Checks a request against its proto message, then converts and verifies it. */
export function validate(typeName: string, request: Record<string, unknown>): void {
  const type = root.lookupType(V1 + typeName);
  const problem = checkMessage(type, request, typeName);
  if (problem) throw new ApiError(400, 'INVALID_ARGUMENT', `Invalid JSON payload: ${problem}`);
  const err = type.verify(type.fromObject(stripWkt(type, request)));
  if (err) throw new ApiError(400, 'INVALID_ARGUMENT', `${typeName}: ${err}`);
}

export interface FakeModelVersion {
  name: string;
  versionId: string;
  versionAliases: string[];
  displayName: string;
  versionDescription?: string;
  artifactUri?: string;
  containerSpec?: Record<string, unknown>;
  labels?: Record<string, string>;
  createTime?: string;
}

export interface FakeDeployedModel {
  id: string;
  model: string;
  modelVersionId: string;
  displayName?: string;
  dedicatedResources?: unknown;
}

export interface FakeEndpoint {
  name: string;
  displayName: string;
  deployedModels: FakeDeployedModel[];
  trafficSplit: Record<string, number>;
  labels: Record<string, string>;
}

interface Operation {
  name: string;
  polls: number;
  result: () => Record<string, unknown>;
  responseType: string;
  error?: { code: number; message: string };
}

export interface FakeVertexOptions {
  /** Polls before an operation reports done (default 1). */
  pollsUntilDone?: number;
  /** Answers predictions for a deployed model (default: echo the instances). */
  predict?: (deployed: FakeDeployedModel, instances: unknown[]) => unknown[];
  /** Largest page a list call answers (default 100), so clients must follow page tokens. */
  maxPageSize?: number;
}

/** One parsed request handed to an extra route (see `FakeVertex.use`). */
export interface FakeRequest {
  method: string;
  /** Decoded path, e.g. `/v1/projects/p/locations/l/customJobs`. */
  path: string;
  url: URL;
  body: Record<string, unknown>;
  fake: FakeVertex;
}

/**
 * An extra service on the same fake (job, metadata, monitoring...): returns the JSON answer, or
 * `undefined` when the request is not its own; throws `ApiError` for API errors.
 */
export type FakeRoute = (req: FakeRequest) => unknown;

/** A running fake; `requests` records every call as `METHOD path` for assertions. */
export class FakeVertex {
  /** Extra services, tried in order before the built-in routes. */
  readonly routes: FakeRoute[] = [];
  readonly models = new Map<string, FakeModelVersion[]>();
  /** Model evaluations by version (`<model>@<versionId>`), with their slices. */
  readonly evaluations = new Map<string, FakeEvaluation[]>();
  readonly endpoints = new Map<string, FakeEndpoint>();
  readonly requests: string[] = [];
  readonly rejected: string[] = [];
  /** Method name (`deployModel`, ...) -> HTTP status to answer once. */
  readonly faults = new Map<string, number>();
  /**
   * Method name -> HTTP status to answer once AFTER the method acted (the job is created, the
   * answer is an error), or `'reset'` to drop the connection instead of answering: the real
   * service can do both (a 503 or a deadline from the front end after the backend acted).
   */
  readonly lateFaults = new Map<string, number | 'reset'>();
  private readonly ops = new Map<string, Operation>();
  private nextId = 100;
  private server!: http.Server;
  port = 0;
  readonly options: FakeVertexOptions;

  constructor(options: FakeVertexOptions = {}) {
    this.options = options;
    this.use(modelRegistryRoutes);
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        try {
          const out = this.handle(req.method!, req.url!, body);
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(out));
        } catch (err) {
          if (err instanceof DroppedConnection) return void req.socket.destroy();
          const e = err instanceof ApiError ? err : new ApiError(500, 'INTERNAL', (err as Error).message);
          if (e.code === 400) this.rejected.push(`${req.method} ${req.url}: ${e.message}`);
          res
            .writeHead(e.code, { 'content-type': 'application/json' })
            .end(JSON.stringify({ error: { code: e.code, message: e.message, status: e.status } }));
        }
      });
    });
    // The clients keep connections alive; on a loaded machine a pause longer than Node's 5 s
    // default would close a socket the client is about to reuse (ECONNRESET).
    this.server.keepAliveTimeout = 120_000;
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Client options for the real clients. */
  clientOptions(): Record<string, unknown> {
    return {
      apiEndpoint: '127.0.0.1',
      port: this.port,
      protocol: 'http',
      fallback: true,
      authClient: fakeAuthClient(),
    };
  }

  /** Adds an extra service (its own file under test/support) to this fake. */
  use(route: FakeRoute): this {
    this.routes.push(route);
    return this;
  }

  /** A fresh numeric id, unique within this fake. */
  newId(): string {
    return String(this.nextId++);
  }

  /** Creates an endpoint directly (as if made in the console). */
  addEndpoint(name: string, displayName = 'ep'): FakeEndpoint {
    const ep: FakeEndpoint = { name, displayName, deployedModels: [], trafficSplit: {}, labels: {} };
    this.endpoints.set(name, ep);
    return ep;
  }

  /** Throws the fault injected for `method`, once. */
  fault(method: string): void {
    const code = this.faults.get(method);
    if (code) {
      this.faults.delete(method);
      throw new ApiError(code, statusOf(code), `injected fault in ${method}`);
    }
  }

  /** Throws the late fault injected for `method` (call it after the method acted), once. */
  lateFault(method: string): void {
    const code = this.lateFaults.get(method);
    if (code === undefined) return;
    this.lateFaults.delete(method);
    if (code === 'reset') throw new DroppedConnection(`injected reset after ${method}`);
    throw new ApiError(code, statusOf(code), `injected fault after ${method} acted`);
  }

  /** Starts a long-running operation whose response (of `responseType`) is `result()`. */
  operation(responseType: string, result: () => Record<string, unknown>): Record<string, unknown> {
    const name = `projects/p/locations/l/operations/${this.nextId++}`;
    this.ops.set(name, { name, polls: 0, result, responseType });
    return { name, done: false };
  }

  private endpoint(name: string): FakeEndpoint {
    const ep = this.endpoints.get(name);
    if (!ep) throw new ApiError(404, 'NOT_FOUND', `Endpoint ${name} not found.`);
    return ep;
  }

  /** The version `name` (`<model>`, `<model>@<id>` or `<model>@<alias>`) names; 404 otherwise. */
  findModel(name: string): FakeModelVersion {
    const [base, ver] = name.split('@');
    const versions = this.models.get(base);
    if (!versions?.length) throw new ApiError(404, 'NOT_FOUND', `Model ${name} not found.`);
    if (!ver)
      return versions.find((v) => v.versionAliases.includes('default')) ?? versions[versions.length - 1];
    const found = versions.find((v) => v.versionId === ver || v.versionAliases.includes(ver));
    if (!found) throw new ApiError(404, 'NOT_FOUND', `Model ${name} not found.`);
    return found;
  }

  private checkSplit(ep: FakeEndpoint, split: Record<string, number>, extra: string[] = []): void {
    const ids = [...ep.deployedModels.map((d) => d.id), ...extra];
    for (const id of Object.keys(split))
      if (!ids.includes(id))
        throw new ApiError(400, 'INVALID_ARGUMENT', `trafficSplit: unknown deployed model id ${id}`);
    const sum = Object.values(split).reduce((a, b) => a + b, 0);
    if (ids.length > 0 && sum !== 100)
      throw new ApiError(400, 'INVALID_ARGUMENT', `trafficSplit must sum to 100, got ${sum}`);
  }

  private handle(method: string, rawUrl: string, text: string): unknown {
    const url = new URL(rawUrl, 'http://x');
    const p = decodeURIComponent(url.pathname);
    this.requests.push(`${method} ${p}`);
    if (process.env.FAKE_VERTEX_DEBUG) console.log(method, p, text);
    let body: Record<string, unknown> = {};
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        throw new ApiError(400, 'INVALID_ARGUMENT', 'Invalid JSON payload');
      }
    }
    for (const route of this.routes) {
      const out = route({ method, path: p, url, body, fake: this });
      if (out !== undefined) return out;
    }
    let m: RegExpMatchArray | null;
    // Long-running operations (the REST fallback polls the first http binding, under /ui/).
    if (
      method === 'GET' &&
      (m = p.match(/^\/(?:v1|ui)\/(projects\/[^/]+\/locations\/[^/]+\/operations\/[^/]+)$/))
    ) {
      const op = this.ops.get(m[1]);
      if (!op) throw new ApiError(404, 'NOT_FOUND', `operation ${m[1]} not found`);
      op.polls++;
      if (op.polls < (this.options.pollsUntilDone ?? 1)) return { name: op.name, done: false };
      try {
        return {
          name: op.name,
          done: true,
          response: { '@type': `type.googleapis.com/${V1}${op.responseType}`, ...op.result() },
        };
      } catch (err) {
        const e = err as ApiError;
        return { name: op.name, done: true, error: { code: e.code === 400 ? 3 : 9, message: e.message } };
      }
    }
    if (method === 'POST' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/models:upload$/))) {
      this.fault('uploadModel');
      const req = { ...body, parent: m[1] };
      validate('UploadModelRequest', req);
      const model = (body.model ?? {}) as Record<string, unknown>;
      if (!model.displayName) throw new ApiError(400, 'INVALID_ARGUMENT', 'model.display_name is required');
      checkLabels((model.labels ?? {}) as Record<string, string>, 'model.labels');
      if (!(model.containerSpec as { imageUri?: string } | undefined)?.imageUri)
        throw new ApiError(400, 'INVALID_ARGUMENT', 'model.container_spec.image_uri is required');
      const parentModel = body.parentModel as string | undefined;
      const base = parentModel ?? `${m[1]}/models/${(body.modelId as string) || String(this.nextId++)}`;
      if (parentModel && !this.models.has(parentModel))
        throw new ApiError(404, 'NOT_FOUND', `Parent model ${parentModel} not found.`);
      if (!parentModel && this.models.has(base))
        throw new ApiError(409, 'ALREADY_EXISTS', `Model ${base} already exists.`);
      const aliases = (model.versionAliases as string[] | undefined) ?? [];
      for (const a of aliases) checkAlias(a, 'model.version_aliases');
      return this.operation('UploadModelResponse', () => {
        const versions = this.models.get(base) ?? [];
        const versionId = String(versions.length + 1);
        // Aliases are unique within a model: a new version takes them from the others. The first
        // version always gets `default`; later ones only when they ask for it.
        const wanted =
          versions.length === 0 && !aliases.includes('default') ? ['default', ...aliases] : aliases;
        for (const v of versions) v.versionAliases = v.versionAliases.filter((a) => !wanted.includes(a));
        versions.push({
          name: base,
          versionId,
          versionAliases: wanted,
          displayName: model.displayName as string,
          versionDescription: model.versionDescription as string | undefined,
          artifactUri: model.artifactUri as string | undefined,
          containerSpec: model.containerSpec as Record<string, unknown>,
          labels: model.labels as Record<string, string> | undefined,
          createTime: new Date().toISOString(),
        });
        this.models.set(base, versions);
        return { model: base, modelVersionId: versionId };
      });
    }
    if (method === 'GET' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/models\/[^/:]+)$/))) {
      validate('GetModelRequest', { name: m[1] });
      const v = this.findModel(m[1]);
      return { ...v, name: v.name };
    }
    if (method === 'GET' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/endpoints\/[^/:]+)$/))) {
      this.fault('getEndpoint');
      validate('GetEndpointRequest', { name: m[1] });
      return this.endpoint(m[1]);
    }
    if (method === 'GET' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/endpoints$/))) {
      const filter = url.searchParams.get('filter') ?? undefined;
      validate('ListEndpointsRequest', { parent: m[1], ...(filter ? { filter } : {}) });
      const name = filter?.match(/^display_name="(.*)"$/)?.[1];
      return {
        endpoints: [...this.endpoints.values()].filter(
          (e) => e.name.startsWith(m![1]) && (!name || e.displayName === name),
        ),
      };
    }
    if (method === 'POST' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/endpoints$/))) {
      validate('CreateEndpointRequest', { parent: m[1], endpoint: body });
      const name = `${m[1]}/endpoints/${this.nextId++}`;
      const ep = this.addEndpoint(name, body.displayName as string);
      return this.operation('Endpoint', () => ({ ...ep }));
    }
    if (
      method === 'PATCH' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/endpoints\/[^/:]+)$/))
    ) {
      this.fault('updateEndpoint');
      const mask = url.searchParams.get('updateMask') ?? '';
      validate('UpdateEndpointRequest', { endpoint: { ...body, name: m[1] }, updateMask: mask });
      const ep = this.endpoint(m[1]);
      const paths = mask.split(',').filter(Boolean);
      if (paths.length === 0) throw new ApiError(400, 'INVALID_ARGUMENT', 'update_mask is required');
      for (const path of paths) {
        if (path === 'traffic_split') {
          const split = (body.trafficSplit ?? {}) as Record<string, number>;
          this.checkSplit(ep, split);
          ep.trafficSplit = { ...split };
        } else if (path === 'labels') ep.labels = { ...((body.labels ?? {}) as Record<string, string>) };
        else if (path === 'display_name') ep.displayName = body.displayName as string;
        else
          throw new ApiError(
            400,
            'INVALID_ARGUMENT',
            `update_mask path ${path} is not supported by this fake`,
          );
      }
      return ep;
    }
    if (
      method === 'POST' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/endpoints\/[^/:]+):deployModel$/))
    ) {
      this.fault('deployModel');
      validate('DeployModelRequest', { ...body, endpoint: m[1] });
      const ep = this.endpoint(m[1]);
      const dm = body.deployedModel as Record<string, unknown> | undefined;
      if (!dm?.model) throw new ApiError(400, 'INVALID_ARGUMENT', 'deployed_model.model is required');
      const version = this.findModel(dm.model as string);
      if (!dm.dedicatedResources)
        throw new ApiError(400, 'INVALID_ARGUMENT', 'custom-container models need dedicated_resources');
      const split = (body.trafficSplit ?? {}) as Record<string, number>;
      this.checkSplit(ep, split, ['0']);
      return this.operation('DeployModelResponse', () => {
        const id = String(this.nextId++);
        const deployed: FakeDeployedModel = {
          id,
          model: version.name,
          modelVersionId: version.versionId,
          displayName: dm.displayName as string | undefined,
          dedicatedResources: dm.dedicatedResources,
        };
        ep.deployedModels.push(deployed);
        ep.trafficSplit = Object.fromEntries(Object.entries(split).map(([k, v]) => [k === '0' ? id : k, v]));
        return { deployedModel: deployed };
      });
    }
    if (
      method === 'POST' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/endpoints\/[^/:]+):undeployModel$/))
    ) {
      this.fault('undeployModel');
      validate('UndeployModelRequest', { ...body, endpoint: m[1] });
      const ep = this.endpoint(m[1]);
      const id = body.deployedModelId as string;
      if (!ep.deployedModels.some((d) => d.id === id))
        throw new ApiError(404, 'NOT_FOUND', `deployed model ${id} not found`);
      // proto3: an empty map is "not set" (the REST client always sends one).
      const given = body.trafficSplit as Record<string, number> | undefined;
      const split = given && Object.keys(given).length > 0 ? given : undefined;
      if (split)
        this.checkSplit({ ...ep, deployedModels: ep.deployedModels.filter((d) => d.id !== id) }, split);
      if (!split && (ep.trafficSplit[id] ?? 0) > 0 && ep.deployedModels.length > 1) {
        throw new ApiError(
          400,
          'FAILED_PRECONDITION',
          `deployed model ${id} still has ${ep.trafficSplit[id]}% traffic`,
        );
      }
      return this.operation('UndeployModelResponse', () => {
        ep.deployedModels = ep.deployedModels.filter((d) => d.id !== id);
        const next = { ...(split ?? ep.trafficSplit) };
        delete next[id];
        ep.trafficSplit = next;
        return {};
      });
    }
    if (
      method === 'POST' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/endpoints\/[^/:]+):predict$/))
    ) {
      validate('PredictRequest', { ...body, endpoint: m[1] });
      const ep = this.endpoint(m[1]);
      const live = ep.deployedModels.filter((d) => (ep.trafficSplit[d.id] ?? 0) > 0);
      if (live.length === 0) throw new ApiError(400, 'FAILED_PRECONDITION', 'no deployed model with traffic');
      const dm = live.sort((a, b) => ep.trafficSplit[b.id] - ep.trafficSplit[a.id])[0];
      const instances = body.instances as unknown[];
      const predictions = this.options.predict ? this.options.predict(dm, instances) : instances;
      return { predictions, deployedModelId: dm.id, model: dm.model, modelVersionId: dm.modelVersionId };
    }
    throw new ApiError(404, 'NOT_FOUND', `fake vertex: no route for ${method} ${p}`);
  }
}
