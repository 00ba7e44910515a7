/**
 * The Vertex AI JobService on the FakeVertex server (`fake.use(route)`): CustomJobs are checked
 * against the protos (CreateCustomJobRequest: CustomJob, WorkerPoolSpec, MachineSpec), then
 * executed for real: each replica of each worker pool is one local process running the container
 * command in the image's working directory (`images` maps an image URI to a directory), with the
 * environment Vertex AI gives a job: CLUSTER_SPEC and TF_CONFIG with the replica's task,
 * CLOUD_ML_JOB_ID, CLOUD_ML_TRIAL_ID-free, AIP_MODEL_DIR / AIP_CHECKPOINT_DIR /
 * AIP_TENSORBOARD_LOG_DIR under the job's base output directory, and the containerSpec env.
 * States go QUEUED → PENDING → RUNNING → SUCCEEDED | FAILED, or CANCELLING → CANCELLED after
 * cancel (replicas get SIGTERM); list pages with pageSize/pageToken and filters on labels.
 *
 * Each replica's container has its own disk: TMPDIR points into a directory made for the
 * replica, thrown away once the job's final state is set (a real container's scratch disk goes
 * with it, after the service has seen it exit), so the job does not clean up before it exits.
 *
 * What it simulates and what it does not: a job is queued for 20 ms and then pending until its
 * replicas' processes are spawned (`holdPending` keeps it pending longer, as Vertex AI does while
 * it waits for machines); it sets startTime when the processes start, as Vertex AI does when the
 * containers run. It does not simulate machine provisioning or image pulls (minutes on Vertex
 * AI), so a figure measured against it is lockstep's own cost: the client calls, the transfers,
 * and the start-up of the `lockstep job` process in each replica, which runs exactly as in the
 * container.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApiError, validate, type FakeRequest, type FakeVertex } from './fake-vertex.ts';

type JobStateName =
  | 'JOB_STATE_QUEUED'
  | 'JOB_STATE_PENDING'
  | 'JOB_STATE_RUNNING'
  | 'JOB_STATE_SUCCEEDED'
  | 'JOB_STATE_FAILED'
  | 'JOB_STATE_CANCELLING'
  | 'JOB_STATE_CANCELLED';

export interface FakeCustomJob {
  name: string;
  displayName: string;
  labels: Record<string, string>;
  jobSpec: Record<string, any>;
  state: JobStateName;
  createTime: string;
  startTime?: string;
  endTime?: string;
  updateTime: string;
  error?: { code: number; message: string };
}

export interface FakeJobsOptions {
  /** Image URI → working directory its container command runs in. Unknown images fail to pull. */
  images: Record<string, string>;
  /** Extra environment for every replica (e.g. LOCKSTEP_GCS_ENDPOINT of the fake GCS). */
  env?: Record<string, string>;
  /** Extra environment for one replica (`workerpool1-0`) of a job: fault injection in tests. */
  replicaEnv?: (job: FakeCustomJob, replica: string) => Record<string, string> | undefined;
  /** Replica output (default: kept in `FakeJobs.output`). */
  onOutput?: (replica: string, line: string) => void;
  /** Resolves when the job may leave PENDING (default at once): no machines yet. */
  holdPending?: (job: FakeCustomJob) => Promise<void>;
}

const FINAL: JobStateName[] = ['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'];

const MACHINE =
  /^(n1|n2|n2d|e2|c2|c2d|c3|a2|a3|g2|m1)-(standard|highmem|highcpu|highgpu|ultragpu|megagpu|ultramem|megamem)-\d+g?$/;

export class FakeJobs {
  readonly jobs = new Map<string, FakeCustomJob>();
  /** Every job create and cancel, as `create <name>` / `cancel <name>`. */
  readonly calls: string[] = [];
  readonly output: string[] = [];
  /** Called once per job when it starts running (tests wait on it). */
  onRunning?: (job: FakeCustomJob) => void;
  /** Most jobs that were in a non-final state at the same time. */
  maxActive = 0;
  private readonly procs = new Map<string, ChildProcess[]>();
  private readonly settled = new Map<string, Promise<void>>();

  constructor(
    private readonly fake: FakeVertex,
    private readonly options: FakeJobsOptions,
  ) {
    fake.use((req) => this.route(req));
  }

  /** Waits until every started job reached a final state. */
  async idle(): Promise<void> {
    await Promise.all(this.settled.values());
  }

  count(kind: 'create' | 'cancel'): number {
    return this.calls.filter((c) => c.startsWith(kind + ' ')).length;
  }

  private now(): string {
    return new Date().toISOString();
  }

  private job(name: string): FakeCustomJob {
    const job = this.jobs.get(name);
    if (!job) throw new ApiError(404, 'NOT_FOUND', `CustomJob ${name} not found.`);
    return job;
  }

  /** Jobs not in a final state now. */
  active(): number {
    return [...this.jobs.values()].filter((j) => !FINAL.includes(j.state)).length;
  }

  private setState(job: FakeCustomJob, state: JobStateName): void {
    job.state = state;
    job.updateTime = this.now();
    if (state === 'JOB_STATE_RUNNING') job.startTime = job.updateTime;
    if (FINAL.includes(state)) job.endTime = job.updateTime;
  }

  private route(req: FakeRequest): unknown {
    const { method, path: p, url, body, fake } = req;
    let m: RegExpMatchArray | null;
    if (method === 'POST' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/customJobs$/))) {
      fake.fault('createCustomJob');
      validate('CreateCustomJobRequest', { parent: m[1], customJob: body });
      const job = this.create(m[1], body, fake);
      fake.lateFault('createCustomJob');
      return job;
    }
    if (
      method === 'GET' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/customJobs\/[^/:]+)$/))
    ) {
      fake.fault('getCustomJob');
      validate('GetCustomJobRequest', { name: m[1] });
      return this.job(m[1]);
    }
    if (method === 'GET' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/customJobs$/))) {
      fake.fault('listCustomJobs');
      const q = Object.fromEntries(url.searchParams);
      const pageSize = q.pageSize ? Number(q.pageSize) : 2; // small pages so paging is exercised
      validate('ListCustomJobsRequest', {
        parent: m[1],
        ...(q.filter ? { filter: q.filter } : {}),
        ...(q.pageToken ? { pageToken: q.pageToken } : {}),
        ...(q.pageSize ? { pageSize } : {}),
      });
      const match = q.filter ? labelFilter(q.filter) : () => true;
      const all = [...this.jobs.values()].filter((j) => j.name.startsWith(m![1] + '/') && match(j));
      const start = q.pageToken ? Number(q.pageToken) : 0;
      const page = all.slice(start, start + pageSize);
      return {
        customJobs: page,
        ...(start + pageSize < all.length ? { nextPageToken: String(start + pageSize) } : {}),
      };
    }
    if (
      method === 'POST' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/customJobs\/[^/:]+):cancel$/))
    ) {
      fake.fault('cancelCustomJob');
      validate('CancelCustomJobRequest', { ...body, name: m[1] });
      const job = this.job(m[1]);
      this.calls.push(`cancel ${job.name}`);
      if (['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(job.state))
        throw new ApiError(400, 'FAILED_PRECONDITION', `CustomJob ${job.name} is already in a final state.`);
      this.setState(job, 'JOB_STATE_CANCELLING');
      const procs = this.procs.get(job.name) ?? [];
      if (procs.length === 0) this.setState(job, 'JOB_STATE_CANCELLED');
      for (const child of procs) child.kill('SIGTERM');
      return {};
    }
    return undefined;
  }

  private create(parent: string, body: Record<string, any>, fake: FakeVertex): FakeCustomJob {
    if (!body.displayName) throw new ApiError(400, 'INVALID_ARGUMENT', 'custom_job.display_name is required');
    const pools = (body.jobSpec?.workerPoolSpecs ?? []) as Record<string, any>[];
    if (pools.length === 0)
      throw new ApiError(400, 'INVALID_ARGUMENT', 'job_spec.worker_pool_specs is required');
    pools.forEach((pool, i) => {
      const at = `job_spec.worker_pool_specs[${i}]`;
      if (!MACHINE.test(pool.machineSpec?.machineType ?? ''))
        throw new ApiError(
          400,
          'INVALID_ARGUMENT',
          `${at}.machine_spec.machine_type: invalid "${pool.machineSpec?.machineType}"`,
        );
      if (!pool.containerSpec?.imageUri)
        throw new ApiError(400, 'INVALID_ARGUMENT', `${at}.container_spec.image_uri is required`);
      const count = Number(pool.replicaCount ?? 0);
      if (count < 1) throw new ApiError(400, 'INVALID_ARGUMENT', `${at}.replica_count must be positive`);
      if (i === 0 && count !== 1)
        throw new ApiError(400, 'INVALID_ARGUMENT', `${at}: the primary pool must have replica_count 1`);
    });
    for (const [k, v] of Object.entries((body.labels ?? {}) as Record<string, string>)) {
      if (!/^[a-z][a-z0-9_-]{0,62}$/.test(k) || !/^[a-z0-9_-]{0,63}$/.test(v))
        throw new ApiError(400, 'INVALID_ARGUMENT', `labels: invalid label ${k}=${v}`);
    }
    const name = `${parent}/customJobs/${fake.newId()}`;
    const now = this.now();
    const job: FakeCustomJob = {
      name,
      displayName: body.displayName,
      labels: body.labels ?? {},
      jobSpec: body.jobSpec,
      state: 'JOB_STATE_QUEUED',
      createTime: now,
      updateTime: now,
    };
    this.jobs.set(name, job);
    this.maxActive = Math.max(this.maxActive, this.active());
    this.calls.push(`create ${name}`);
    this.settled.set(name, this.execute(job));
    return job;
  }

  private async execute(job: FakeCustomJob): Promise<void> {
    const disks: string[] = [];
    try {
      await this.run(job, disks);
    } finally {
      // The containers' disks go once the service has reported the final state.
      await Promise.all(disks.map((d) => fs.promises.rm(d, { recursive: true, force: true })));
    }
  }

  /** Runs the job's replicas to its final state; `disks` gets each replica's scratch disk. */
  private async run(job: FakeCustomJob, disks: string[]): Promise<void> {
    await new Promise((r) => setTimeout(r, 20));
    if (job.state !== 'JOB_STATE_QUEUED') return;
    this.setState(job, 'JOB_STATE_PENDING');
    await this.options.holdPending?.(job);
    // Cancelled while it waited for machines: no replica ever starts.
    if ((job.state as JobStateName) !== 'JOB_STATE_PENDING') {
      if ((job.state as JobStateName) === 'JOB_STATE_CANCELLING') this.setState(job, 'JOB_STATE_CANCELLED');
      return;
    }
    const pools = job.jobSpec.workerPoolSpecs as Record<string, any>[];
    const id = job.name.split('/').pop()!;
    const cluster: Record<string, string[]> = {};
    pools.forEach((pool, i) => {
      cluster[`workerpool${i}`] = Array.from(
        { length: Number(pool.replicaCount) },
        (_, r) => `workerpool${i}-${r}:2222`,
      );
    });
    const base = job.jobSpec.baseOutputDirectory?.outputUriPrefix as string | undefined;
    const failures: string[] = [];
    const runs: Promise<void>[] = [];
    const children: ChildProcess[] = [];
    for (const [i, pool] of pools.entries()) {
      const spec = pool.containerSpec as {
        imageUri: string;
        command?: string[];
        args?: string[];
        env?: { name: string; value: string }[];
      };
      const dir = this.options.images[spec.imageUri];
      if (!dir) {
        job.error = { code: 3, message: `Unable to pull image ${spec.imageUri}` };
        this.setState(job, 'JOB_STATE_FAILED');
        return;
      }
      for (let r = 0; r < Number(pool.replicaCount); r++) {
        const task = { type: `workerpool${i}`, index: r };
        const replica = `workerpool${i}-${r}`;
        const disk = fs.mkdtempSync(path.join(os.tmpdir(), `fake-vertex-${replica}-`));
        disks.push(disk);
        const env: Record<string, string> = {
          ...(process.env as Record<string, string>),
          ...this.options.env,
          TMPDIR: disk,
          CLOUD_ML_JOB_ID: id,
          CLUSTER_SPEC: JSON.stringify({ cluster, environment: 'cloud', task }),
          TF_CONFIG: JSON.stringify({
            cluster,
            environment: 'cloud',
            task: { ...task, trial: '' },
            job: { worker_pool_specs: pools },
          }),
          ...(base
            ? {
                AIP_MODEL_DIR: `${base}/model/`,
                AIP_CHECKPOINT_DIR: `${base}/checkpoints/`,
                AIP_TENSORBOARD_LOG_DIR: `${base}/logs/`,
              }
            : {}),
          ...Object.fromEntries((spec.env ?? []).map((e) => [e.name, e.value])),
          ...this.options.replicaEnv?.(job, replica),
        };
        const [cmd, ...rest] = [...(spec.command ?? []), ...(spec.args ?? [])];
        const child = spawn(cmd!, rest, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        let last = '';
        const onData = (chunk: Buffer) => {
          for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
            last = line;
            if (this.options.onOutput) this.options.onOutput(replica, line);
            else this.output.push(`${replica}: ${line}`);
          }
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        runs.push(
          new Promise<void>((resolve) => {
            child.on('error', (err) => {
              failures.push(`The replica ${replica} could not start: ${err.message}`);
              resolve();
            });
            child.on('close', (code, signal) => {
              if (code !== 0 && (job.state as JobStateName) !== 'JOB_STATE_CANCELLING')
                failures.push(
                  `The replica ${replica} exited with a non-zero status of ${code ?? signal}. Last line: ${last}`,
                );
              resolve();
            });
          }),
        );
      }
    }
    this.procs.set(job.name, children);
    this.setState(job, 'JOB_STATE_RUNNING');
    this.onRunning?.(job);
    await Promise.all(runs);
    this.procs.delete(job.name);
    if ((job.state as JobStateName) === 'JOB_STATE_CANCELLING') {
      job.error = { code: 1, message: 'CANCELED' };
      this.setState(job, 'JOB_STATE_CANCELLED');
    } else if (failures.length > 0) {
      job.error = { code: 3, message: failures[0]! };
      this.setState(job, 'JOB_STATE_FAILED');
    } else this.setState(job, 'JOB_STATE_SUCCEEDED');
  }
}

/**
 * The label terms of the documented list filter, joined by AND: `labels.k="v"` or `labels.k=v`
 * (equality) and `labels.k:*` (the key exists). Anything else (other fields, OR, NOT, a term
 * that does not parse) is answered 400 INVALID_ARGUMENT, as the real API answers a filter it
 * cannot parse, so a client sending a filter this fake does not understand fails here too.
 */
export function labelFilter(filter: string): (job: { labels: Record<string, string> }) => boolean {
  const terms = filter
    .trim()
    .split(/\s+AND\s+/)
    .map((t) => {
      const m = t
        .trim()
        .match(/^labels\.([a-z][a-z0-9_-]{0,62})\s*(?:=\s*(?:"([^"]*)"|([^\s"()]+))|:\s*\*)$/);
      if (!m) throw new ApiError(400, 'INVALID_ARGUMENT', `Invalid filter: ${filter}`);
      return { key: m[1]!, value: m[2] ?? m[3] };
    });
  return (job) =>
    terms.every(({ key, value }) => (value === undefined ? key in job.labels : job.labels[key] === value));
}

export interface FakeBatchPredictionJob {
  name: string;
  displayName: string;
  model: string;
  labels: Record<string, string>;
  inputConfig: Record<string, any>;
  outputConfig: Record<string, any>;
  instanceConfig?: Record<string, any>;
  manualBatchTuningParameters?: { batchSize?: number };
  state: JobStateName;
  createTime: string;
  startTime?: string;
  endTime?: string;
  updateTime: string;
  outputInfo?: { gcsOutputDirectory: string };
  completionStats?: { successfulCount: string; failedCount: string };
  error?: { code: number; message: string };
}

/** The parts of the fake GCS a batch job reads and writes. */
export interface FakeBatchStorage {
  object(bucket: string, name: string): { data: Buffer } | undefined;
  putObject(bucket: string, name: string, data: Buffer): void;
}

export interface FakeBatchJobsOptions {
  /** Image URI → working directory; the serving container runs `node bin/lockstep.mjs serve` there. */
  images: Record<string, string>;
  storage: FakeBatchStorage;
  /** Extra environment for the serving container. */
  env?: Record<string, string>;
}

function splitGs(uri: string): { bucket: string; name: string } {
  const m = uri.match(/^gs:\/\/([^/]+)\/?(.*)$/);
  if (!m) throw new ApiError(400, 'INVALID_ARGUMENT', `not a Cloud Storage URI: ${uri}`);
  return { bucket: m[1]!, name: m[2]! };
}

/**
 * BatchPredictionJobs on the FakeVertex server: create/get/cancel/list are checked against the
 * protos (CreateBatchPredictionJobRequest: BatchPredictionJob, InputConfig, OutputConfig,
 * InstanceConfig, BatchDedicatedResources), then executed as Vertex AI does for a custom
 * container: the model version's image is started (one `lockstep serve` process with
 * AIP_HTTP_PORT, AIP_PREDICT_ROUTE, AIP_HEALTH_ROUTE and AIP_STORAGE_URI = the version's
 * artifactUri), the JSON lines instances are posted to the predict route in batches of
 * `manualBatchTuningParameters.batch_size` (the `instance_config.key_field` taken out of each
 * instance and returned as `key`), and `prediction.results-*` / `prediction.errors_stats-*` are
 * written under `<output_uri_prefix>/prediction-<model>-<time>/`. A failed request fails every
 * instance of its batch, as on Vertex AI.
 */
export class FakeBatchJobs {
  readonly jobs = new Map<string, FakeBatchPredictionJob>();
  readonly calls: string[] = [];
  /** Instances per predict request the container received. */
  readonly requests: number[] = [];
  private readonly settled = new Map<string, Promise<void>>();
  private readonly procs = new Map<string, ChildProcess>();

  constructor(
    private readonly fake: FakeVertex,
    private readonly options: FakeBatchJobsOptions,
  ) {
    fake.use((req) => this.route(req));
  }

  async idle(): Promise<void> {
    await Promise.all(this.settled.values());
  }

  count(kind: 'create' | 'cancel'): number {
    return this.calls.filter((c) => c.startsWith(kind + ' ')).length;
  }

  private job(name: string): FakeBatchPredictionJob {
    const job = this.jobs.get(name);
    if (!job) throw new ApiError(404, 'NOT_FOUND', `BatchPredictionJob ${name} not found.`);
    return job;
  }

  private setState(job: FakeBatchPredictionJob, state: JobStateName): void {
    job.state = state;
    job.updateTime = new Date().toISOString();
    if (state === 'JOB_STATE_RUNNING') job.startTime = job.updateTime;
    if (['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(state))
      job.endTime = job.updateTime;
  }

  private route(req: FakeRequest): unknown {
    const { method, path: p, url, body, fake } = req;
    let m: RegExpMatchArray | null;
    const base = /^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/batchPredictionJobs/;
    if (!base.test(p)) return undefined;
    if (
      method === 'POST' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/batchPredictionJobs$/))
    ) {
      fake.fault('createBatchPredictionJob');
      validate('CreateBatchPredictionJobRequest', { parent: m[1], batchPredictionJob: body });
      return this.create(m[1]!, body);
    }
    if (
      method === 'GET' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/batchPredictionJobs\/[^/:]+)$/))
    ) {
      fake.fault('getBatchPredictionJob');
      validate('GetBatchPredictionJobRequest', { name: m[1] });
      return this.job(m[1]!);
    }
    if (
      method === 'GET' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/batchPredictionJobs$/))
    ) {
      const q = Object.fromEntries(url.searchParams);
      validate('ListBatchPredictionJobsRequest', {
        parent: m[1],
        ...(q.filter ? { filter: q.filter } : {}),
        ...(q.pageToken ? { pageToken: q.pageToken } : {}),
      });
      const match = q.filter ? labelFilter(q.filter) : () => true;
      return {
        batchPredictionJobs: [...this.jobs.values()].filter(
          (j) => j.name.startsWith(m![1] + '/') && match(j),
        ),
      };
    }
    if (
      method === 'POST' &&
      (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+\/batchPredictionJobs\/[^/:]+):cancel$/))
    ) {
      fake.fault('cancelBatchPredictionJob');
      validate('CancelBatchPredictionJobRequest', { ...body, name: m[1] });
      const job = this.job(m[1]!);
      this.calls.push(`cancel ${job.name}`);
      if (['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(job.state))
        throw new ApiError(
          400,
          'FAILED_PRECONDITION',
          `BatchPredictionJob ${job.name} is already in a final state.`,
        );
      this.setState(job, 'JOB_STATE_CANCELLING');
      const proc = this.procs.get(job.name);
      if (proc) proc.kill('SIGTERM');
      else this.setState(job, 'JOB_STATE_CANCELLED');
      return {};
    }
    throw new ApiError(404, 'NOT_FOUND', `fake vertex: no batch route for ${method} ${p}`);
  }

  private create(parent: string, body: Record<string, any>): FakeBatchPredictionJob {
    if (!body.displayName) throw new ApiError(400, 'INVALID_ARGUMENT', 'display_name is required');
    const version = this.fake.findModel(String(body.model ?? ''));
    if (body.inputConfig?.instancesFormat !== 'jsonl' || !body.inputConfig?.gcsSource?.uris?.length)
      throw new ApiError(
        400,
        'INVALID_ARGUMENT',
        'input_config: only jsonl from gcs_source is supported here',
      );
    if (
      body.outputConfig?.predictionsFormat !== 'jsonl' ||
      !body.outputConfig?.gcsDestination?.outputUriPrefix
    )
      throw new ApiError(400, 'INVALID_ARGUMENT', 'output_config: jsonl to gcs_destination is required');
    // Custom-container models need dedicated resources (no automatic resources for batch).
    if (!MACHINE.test(body.dedicatedResources?.machineSpec?.machineType ?? ''))
      throw new ApiError(
        400,
        'INVALID_ARGUMENT',
        `dedicated_resources.machine_spec.machine_type: invalid "${body.dedicatedResources?.machineSpec?.machineType}"`,
      );
    for (const [k, v] of Object.entries((body.labels ?? {}) as Record<string, string>)) {
      if (!/^[a-z][a-z0-9_-]{0,62}$/.test(k) || !/^[a-z0-9_-]{0,63}$/.test(v))
        throw new ApiError(400, 'INVALID_ARGUMENT', `labels: invalid label ${k}=${v}`);
    }
    const now = new Date().toISOString();
    const job: FakeBatchPredictionJob = {
      name: `${parent}/batchPredictionJobs/${this.fake.newId()}`,
      displayName: body.displayName,
      model: body.model,
      labels: body.labels ?? {},
      inputConfig: body.inputConfig,
      outputConfig: body.outputConfig,
      ...(body.instanceConfig ? { instanceConfig: body.instanceConfig } : {}),
      ...(body.manualBatchTuningParameters
        ? { manualBatchTuningParameters: body.manualBatchTuningParameters }
        : {}),
      state: 'JOB_STATE_QUEUED',
      createTime: now,
      updateTime: now,
    };
    this.jobs.set(job.name, job);
    this.calls.push(`create ${job.name}`);
    this.settled.set(
      job.name,
      this.execute(job, version).catch((err: Error) => {
        job.error = { code: 13, message: err.message };
        this.setState(job, 'JOB_STATE_FAILED');
      }),
    );
    return job;
  }

  private async execute(
    job: FakeBatchPredictionJob,
    version: { artifactUri?: string; containerSpec?: Record<string, unknown>; displayName: string },
  ): Promise<void> {
    await new Promise((r) => setTimeout(r, 20));
    if (job.state !== 'JOB_STATE_QUEUED') return;
    this.setState(job, 'JOB_STATE_PENDING');
    const spec = (version.containerSpec ?? {}) as {
      imageUri?: string;
      predictRoute?: string;
      healthRoute?: string;
      env?: { name: string; value: string }[];
    };
    const dir = spec.imageUri ? this.options.images[spec.imageUri] : undefined;
    if (!dir) {
      job.error = { code: 3, message: `Unable to pull image ${spec.imageUri}` };
      return this.setState(job, 'JOB_STATE_FAILED');
    }
    const predictRoute = spec.predictRoute ?? '/predict';
    const healthRoute = spec.healthRoute ?? '/health';
    const port = await freePort();
    const child = spawn(process.execPath, ['bin/lockstep.mjs', 'serve'], {
      cwd: dir,
      env: {
        ...(process.env as Record<string, string>),
        ...this.options.env,
        ...Object.fromEntries((spec.env ?? []).map((e) => [e.name, e.value])),
        AIP_HTTP_PORT: String(port),
        AIP_PREDICT_ROUTE: predictRoute,
        AIP_HEALTH_ROUTE: healthRoute,
        AIP_STORAGE_URI: version.artifactUri ?? '',
        AIP_MODE: 'BATCH',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.procs.set(job.name, child);
    let log = '';
    child.stdout!.on('data', (c: Buffer) => (log += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    const origin = `http://127.0.0.1:${port}`;
    try {
      // Vertex AI waits for the health route before it sends traffic.
      await waitHealthy(`${origin}${healthRoute}`, exited, () => log);
      this.setState(job, 'JOB_STATE_RUNNING');
      const keyField = job.instanceConfig?.keyField as string | undefined;
      const instances: Record<string, unknown>[] = [];
      for (const uri of job.inputConfig.gcsSource.uris as string[]) {
        const { bucket, name } = splitGs(uri);
        const obj = this.options.storage.object(bucket, name);
        if (!obj) throw new Error(`Input ${uri} not found`);
        for (const line of obj.data.toString('utf8').split('\n').filter(Boolean))
          instances.push(JSON.parse(line));
      }
      const size = Number(job.manualBatchTuningParameters?.batchSize ?? 64);
      const results: string[] = [];
      const errors: string[] = [];
      for (let i = 0; i < instances.length; i += size) {
        if ((job.state as JobStateName) === 'JOB_STATE_CANCELLING') break;
        const batch = instances.slice(i, i + size);
        const keys = batch.map((inst) => (keyField ? inst[keyField] : undefined));
        const sent = batch.map((inst) => {
          if (!keyField) return inst;
          const { [keyField]: _key, ...rest } = inst;
          return rest;
        });
        this.requests.push(sent.length);
        const res = await fetch(`${origin}${predictRoute}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ instances: sent }),
        });
        const answer = (await res.json()) as { predictions?: unknown[]; error?: string };
        batch.forEach((inst, k) => {
          const head = keyField ? { key: keys[k] } : { instance: inst };
          if (res.ok && answer.predictions?.[k] !== undefined)
            results.push(JSON.stringify({ ...head, prediction: answer.predictions[k] }));
          else
            errors.push(
              JSON.stringify({ ...head, status: `(${res.status}) ${answer.error ?? res.statusText}` }),
            );
        });
      }
      if ((job.state as JobStateName) === 'JOB_STATE_CANCELLING') {
        job.error = { code: 1, message: 'CANCELED' };
        return this.setState(job, 'JOB_STATE_CANCELLED');
      }
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
      const prefix = String(job.outputConfig.gcsDestination.outputUriPrefix).replace(/\/$/, '');
      const outDir = `${prefix}/prediction-${version.displayName}-${stamp}`;
      const { bucket, name } = splitGs(outDir);
      this.options.storage.putObject(
        bucket,
        `${name}/prediction.results-00000-of-00001`,
        Buffer.from(results.map((l) => l + '\n').join('')),
      );
      this.options.storage.putObject(
        bucket,
        `${name}/prediction.errors_stats-00000-of-00001`,
        Buffer.from(errors.map((l) => l + '\n').join('')),
      );
      job.outputInfo = { gcsOutputDirectory: outDir };
      job.completionStats = { successfulCount: String(results.length), failedCount: String(errors.length) };
      this.setState(job, 'JOB_STATE_SUCCEEDED');
    } finally {
      child.kill('SIGTERM');
      await exited;
      this.procs.delete(job.name);
    }
  }
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Polls the container's health route (Vertex AI's readiness probe) until it answers 200. */
async function waitHealthy(url: string, exited: Promise<void>, log: () => string): Promise<void> {
  let dead = false;
  void exited.then(() => (dead = true));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (dead) throw new Error(`The serving container exited before it was healthy: ${log().slice(-500)}`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`The serving container did not become healthy within 60 s: ${log().slice(-500)}`);
}
