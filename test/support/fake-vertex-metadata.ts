/**
 * Vertex AI Metadata service (stores, contexts, artifacts, context children) and Model Monitoring
 * jobs (ModelDeploymentMonitoringJob create / get / list / update / delete), registered on a
 * FakeVertex with `fake.use(metadataRoutes(state))`. Every body is checked against the shipped
 * protos (`validate`); state persists across calls; ids clash with 409 like the real service.
 */
import { ApiError, validate, type FakeRequest, type FakeRoute } from './fake-vertex.ts';

export interface FakeContext {
  name: string;
  displayName?: string;
  schemaTitle?: string;
  schemaVersion?: string;
  metadata: Record<string, unknown>;
  /** Child context names (addContextChildren). */
  children: string[];
  /** Artifact names attached (addContextArtifactsAndExecutions). */
  artifacts: string[];
}

export interface FakeArtifact {
  name: string;
  displayName?: string;
  schemaTitle?: string;
  metadata: Record<string, unknown>;
}

export interface FakeMetadataState {
  stores: Set<string>;
  contexts: Map<string, FakeContext>;
  artifacts: Map<string, FakeArtifact>;
  monitoringJobs: Map<string, Record<string, unknown>>;
  /** `METHOD path` of each call these routes answered. */
  calls: string[];
  /** Method name -> HTTP status to answer once (e.g. `createContext: 403`). */
  faults: Map<string, number>;
}

export function fakeMetadataState(): FakeMetadataState {
  return {
    stores: new Set(),
    contexts: new Map(),
    artifacts: new Map(),
    monitoringJobs: new Map(),
    calls: [],
    faults: new Map(),
  };
}

const LOC = 'projects/[^/]+/locations/[^/]+';
const STORE = `${LOC}/metadataStores/[^/:]+`;

function fault(state: FakeMetadataState, method: string): void {
  const code = state.faults.get(method);
  if (!code) return;
  state.faults.delete(method);
  const status = code === 403 ? 'PERMISSION_DENIED' : code === 404 ? 'NOT_FOUND' : 'INTERNAL';
  throw new ApiError(code, status, `Permission 'aiplatform.${method}' denied (injected)`);
}

function store(state: FakeMetadataState, name: string): void {
  if (!state.stores.has(name)) throw new ApiError(404, 'NOT_FOUND', `MetadataStore ${name} not found.`);
}

function context(state: FakeMetadataState, name: string): FakeContext {
  const c = state.contexts.get(name);
  if (!c) throw new ApiError(404, 'NOT_FOUND', `Context ${name} not found.`);
  return c;
}

const ID = /^[a-z0-9][a-z0-9-]{0,127}$/;

function metadataRoute(state: FakeMetadataState, req: FakeRequest): unknown {
  const { method, path: p, url, body, fake } = req;
  let m: RegExpMatchArray | null;
  const answer = (what: string) => {
    state.calls.push(`${method} ${p}`);
    fault(state, what);
  };
  if (method === 'GET' && (m = p.match(new RegExp(`^/v1/(${STORE})$`)))) {
    answer('getMetadataStore');
    validate('GetMetadataStoreRequest', { name: m[1] });
    store(state, m[1]);
    return { name: m[1] };
  }
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/(${LOC})/metadataStores$`)))) {
    answer('createMetadataStore');
    const id = url.searchParams.get('metadataStoreId') ?? '';
    validate('CreateMetadataStoreRequest', { parent: m[1], metadataStore: body, metadataStoreId: id });
    const name = `${m[1]}/metadataStores/${id}`;
    if (state.stores.has(name)) throw new ApiError(409, 'ALREADY_EXISTS', `MetadataStore ${name} exists.`);
    return fake.operation('MetadataStore', () => {
      state.stores.add(name);
      return { name };
    });
  }
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/(${STORE})/contexts$`)))) {
    answer('createContext');
    const id = url.searchParams.get('contextId') ?? '';
    validate('CreateContextRequest', { parent: m[1], context: body, contextId: id });
    store(state, m[1]);
    if (!ID.test(id)) throw new ApiError(400, 'INVALID_ARGUMENT', `context_id "${id}" is not valid`);
    const name = `${m[1]}/contexts/${id}`;
    if (state.contexts.has(name)) throw new ApiError(409, 'ALREADY_EXISTS', `Context ${name} exists.`);
    const c: FakeContext = {
      name,
      displayName: body.displayName as string | undefined,
      schemaTitle: body.schemaTitle as string | undefined,
      schemaVersion: body.schemaVersion as string | undefined,
      metadata: (body.metadata ?? {}) as Record<string, unknown>,
      children: [],
      artifacts: [],
    };
    state.contexts.set(name, c);
    return { ...c };
  }
  if (method === 'GET' && (m = p.match(new RegExp(`^/v1/(${STORE}/contexts/[^/:]+)$`)))) {
    answer('getContext');
    validate('GetContextRequest', { name: m[1] });
    return { ...context(state, m[1]) };
  }
  if (method === 'PATCH' && (m = p.match(new RegExp(`^/v1/(${STORE}/contexts/[^/:]+)$`)))) {
    answer('updateContext');
    const mask = url.searchParams.get('updateMask') ?? '';
    validate('UpdateContextRequest', { context: { ...body, name: m[1] }, updateMask: mask });
    const c = context(state, m[1]);
    for (const path of mask.split(',').filter(Boolean)) {
      if (path === 'metadata') c.metadata = (body.metadata ?? {}) as Record<string, unknown>;
      else if (path === 'display_name') c.displayName = body.displayName as string;
      else throw new ApiError(400, 'INVALID_ARGUMENT', `update_mask path ${path} not supported`);
    }
    return { ...c };
  }
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/(${STORE}/contexts/[^/:]+):addContextChildren$`)))) {
    answer('addContextChildren');
    validate('AddContextChildrenRequest', { ...body, context: m[1] });
    const parent = context(state, m[1]);
    for (const child of (body.childContexts ?? []) as string[]) {
      context(state, child);
      if (child === m[1]) throw new ApiError(400, 'INVALID_ARGUMENT', 'a context cannot be its own child');
      if (!parent.children.includes(child)) parent.children.push(child);
    }
    return {};
  }
  if (
    method === 'POST' &&
    (m = p.match(new RegExp(`^/v1/(${STORE}/contexts/[^/:]+):addContextArtifactsAndExecutions$`)))
  ) {
    answer('addContextArtifactsAndExecutions');
    validate('AddContextArtifactsAndExecutionsRequest', { ...body, context: m[1] });
    const c = context(state, m[1]);
    for (const a of (body.artifacts ?? []) as string[]) {
      if (!state.artifacts.has(a)) throw new ApiError(404, 'NOT_FOUND', `Artifact ${a} not found.`);
      if (!c.artifacts.includes(a)) c.artifacts.push(a);
    }
    return {};
  }
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/(${STORE})/artifacts$`)))) {
    answer('createArtifact');
    const id = url.searchParams.get('artifactId') ?? '';
    validate('CreateArtifactRequest', { parent: m[1], artifact: body, artifactId: id });
    store(state, m[1]);
    if (!ID.test(id)) throw new ApiError(400, 'INVALID_ARGUMENT', `artifact_id "${id}" is not valid`);
    const name = `${m[1]}/artifacts/${id}`;
    if (state.artifacts.has(name)) throw new ApiError(409, 'ALREADY_EXISTS', `Artifact ${name} exists.`);
    const a: FakeArtifact = {
      name,
      displayName: body.displayName as string | undefined,
      schemaTitle: body.schemaTitle as string | undefined,
      metadata: (body.metadata ?? {}) as Record<string, unknown>,
    };
    state.artifacts.set(name, a);
    return { ...a };
  }
  if (method === 'PATCH' && (m = p.match(new RegExp(`^/v1/(${STORE}/artifacts/[^/:]+)$`)))) {
    answer('updateArtifact');
    const mask = url.searchParams.get('updateMask') ?? '';
    validate('UpdateArtifactRequest', { artifact: { ...body, name: m[1] }, updateMask: mask });
    const a = state.artifacts.get(m[1]);
    if (!a) throw new ApiError(404, 'NOT_FOUND', `Artifact ${m[1]} not found.`);
    if (mask.split(',').includes('metadata')) a.metadata = (body.metadata ?? {}) as Record<string, unknown>;
    return { ...a };
  }
  return undefined;
}

function job(state: FakeMetadataState, name: string): Record<string, unknown> {
  const j = state.monitoringJobs.get(name);
  if (!j) throw new ApiError(404, 'NOT_FOUND', `ModelDeploymentMonitoringJob ${name} not found.`);
  return j;
}

function monitoringRoute(state: FakeMetadataState, req: FakeRequest): unknown {
  const { method, path: p, url, body, fake } = req;
  const JOBS = `(${LOC})/modelDeploymentMonitoringJobs`;
  const JOB = `${LOC}/modelDeploymentMonitoringJobs/[^/:]+`;
  let m: RegExpMatchArray | null;
  const answer = (what: string) => {
    state.calls.push(`${method} ${p}`);
    fault(state, what);
  };
  if (method === 'POST' && (m = p.match(new RegExp(`^/v1/${JOBS}$`)))) {
    answer('createModelDeploymentMonitoringJob');
    validate('CreateModelDeploymentMonitoringJobRequest', {
      parent: m[1],
      modelDeploymentMonitoringJob: body,
    });
    // Required fields; a required repeated field needs at least one element.
    for (const key of ['displayName', 'endpoint', 'modelDeploymentMonitoringObjectiveConfigs'])
      if (!body[key] || (Array.isArray(body[key]) && body[key].length === 0))
        throw new ApiError(400, 'INVALID_ARGUMENT', `${key} is required`);
    const endpoint = body.endpoint as string;
    if (!fake.endpoints.has(endpoint))
      throw new ApiError(404, 'NOT_FOUND', `Endpoint ${endpoint} not found.`);
    for (const j of state.monitoringJobs.values())
      if (j.endpoint === endpoint)
        throw new ApiError(
          400,
          'FAILED_PRECONDITION',
          `Endpoint ${endpoint} already has a model deployment monitoring job.`,
        );
    const name = `${m[1]}/modelDeploymentMonitoringJobs/${fake.newId()}`;
    const created = { ...body, name, state: 'JOB_STATE_RUNNING' };
    state.monitoringJobs.set(name, created);
    return created;
  }
  if (method === 'GET' && (m = p.match(new RegExp(`^/v1/${JOBS}$`)))) {
    answer('listModelDeploymentMonitoringJobs');
    const filter = url.searchParams.get('filter') ?? undefined;
    validate('ListModelDeploymentMonitoringJobsRequest', { parent: m[1], ...(filter ? { filter } : {}) });
    return {
      modelDeploymentMonitoringJobs: [...state.monitoringJobs.values()].filter((j) =>
        (j.name as string).startsWith(m![1]),
      ),
    };
  }
  if (method === 'GET' && (m = p.match(new RegExp(`^/v1/(${JOB})$`)))) {
    answer('getModelDeploymentMonitoringJob');
    validate('GetModelDeploymentMonitoringJobRequest', { name: m[1] });
    return job(state, m[1]);
  }
  if (method === 'PATCH' && (m = p.match(new RegExp(`^/v1/(${JOB})$`)))) {
    answer('updateModelDeploymentMonitoringJob');
    const mask = url.searchParams.get('updateMask') ?? '';
    validate('UpdateModelDeploymentMonitoringJobRequest', {
      modelDeploymentMonitoringJob: { ...body, name: m[1] },
      updateMask: mask,
    });
    const j = job(state, m[1]);
    const paths = mask.split(',').filter(Boolean);
    if (paths.length === 0) throw new ApiError(400, 'INVALID_ARGUMENT', 'update_mask is required');
    if (
      paths.includes('model_deployment_monitoring_objective_configs') &&
      !(body.modelDeploymentMonitoringObjectiveConfigs as unknown[] | undefined)?.length
    )
      throw new ApiError(400, 'INVALID_ARGUMENT', 'modelDeploymentMonitoringObjectiveConfigs is required');
    const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    return fake.operation('ModelDeploymentMonitoringJob', () => {
      for (const path of paths) j[camel(path)] = body[camel(path)];
      return j;
    });
  }
  if (method === 'DELETE' && (m = p.match(new RegExp(`^/v1/(${JOB})$`)))) {
    answer('deleteModelDeploymentMonitoringJob');
    validate('DeleteModelDeploymentMonitoringJobRequest', { name: m[1] });
    job(state, m[1]);
    // An operation that is already done: its response is Empty, not a v1 message.
    state.monitoringJobs.delete(m[1]);
    return {
      name: `${m[1].replace(/modelDeploymentMonitoringJobs\/.*/, '')}operations/${fake.newId()}`,
      done: true,
      response: { '@type': 'type.googleapis.com/google.protobuf.Empty' },
    };
  }
  return undefined;
}

/**
 * updateEndpoint with the `predict_request_response_logging_config` mask (the built-in route
 * answers the other masks): the config is kept on the endpoint, so getEndpoint returns it.
 */
function endpointLoggingRoute(state: FakeMetadataState, req: FakeRequest): unknown {
  const { method, path: p, url, body, fake } = req;
  const mask = url.searchParams.get('updateMask') ?? '';
  const m = p.match(new RegExp(`^/v1/(${LOC}/endpoints/[^/:]+)$`));
  if (method !== 'PATCH' || !m || mask !== 'predict_request_response_logging_config') return undefined;
  state.calls.push(`${method} ${p}`);
  fault(state, 'updateEndpoint');
  validate('UpdateEndpointRequest', { endpoint: { ...body, name: m[1] }, updateMask: mask });
  const ep = fake.endpoints.get(m[1]);
  if (!ep) throw new ApiError(404, 'NOT_FOUND', `Endpoint ${m[1]} not found.`);
  const config = (body.predictRequestResponseLoggingConfig ?? {}) as Record<string, any>;
  const uri = config.bigqueryDestination?.outputUri as string | undefined;
  if (config.enabled && (!uri || !/^bq:\/\/[^.]+(\.[^.]+){0,2}$/.test(uri)))
    throw new ApiError(
      400,
      'INVALID_ARGUMENT',
      `bigquery_destination.output_uri "${uri}" is not a bq:// URI`,
    );
  (ep as unknown as Record<string, unknown>).predictRequestResponseLoggingConfig = config;
  return ep;
}

/** The Metadata, Model Monitoring and endpoint-logging routes over one state. */
export function metadataRoutes(state: FakeMetadataState): FakeRoute {
  return (req) =>
    endpointLoggingRoute(state, req) ?? metadataRoute(state, req) ?? monitoringRoute(state, req);
}
