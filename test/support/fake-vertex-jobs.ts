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
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
}

const MACHINE =
  /^(n1|n2|n2d|e2|c2|c2d|c3|a2|a3|g2|m1)-(standard|highmem|highcpu|highgpu|ultragpu|megagpu|ultramem|megamem)-\d+g?$/;

export class FakeJobs {
  readonly jobs = new Map<string, FakeCustomJob>();
  /** Every job create and cancel, as `create <name>` / `cancel <name>`. */
  readonly calls: string[] = [];
  readonly output: string[] = [];
  /** Called once per job when it starts running (tests wait on it). */
  onRunning?: (job: FakeCustomJob) => void;
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

  private setState(job: FakeCustomJob, state: JobStateName): void {
    job.state = state;
    job.updateTime = this.now();
    if (state === 'JOB_STATE_RUNNING') job.startTime = job.updateTime;
    if (['JOB_STATE_SUCCEEDED', 'JOB_STATE_FAILED', 'JOB_STATE_CANCELLED'].includes(state))
      job.endTime = job.updateTime;
  }

  private route(req: FakeRequest): unknown {
    const { method, path: p, url, body, fake } = req;
    let m: RegExpMatchArray | null;
    if (method === 'POST' && (m = p.match(/^\/v1\/(projects\/[^/]+\/locations\/[^/]+)\/customJobs$/))) {
      fake.fault('createCustomJob');
      validate('CreateCustomJobRequest', { parent: m[1], customJob: body });
      const job = this.create(m[1], body, fake);
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
    this.calls.push(`create ${name}`);
    this.settled.set(name, this.execute(job));
    return job;
  }

  private async execute(job: FakeCustomJob): Promise<void> {
    await new Promise((r) => setTimeout(r, 20));
    if (job.state !== 'JOB_STATE_QUEUED') return;
    this.setState(job, 'JOB_STATE_PENDING');
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
        const env: Record<string, string> = {
          ...(process.env as Record<string, string>),
          ...this.options.env,
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

/** `labels.k="v" AND labels.k2="v2"` (the subset of the list filter syntax lockstep sends). */
function labelFilter(filter: string): (job: FakeCustomJob) => boolean {
  const terms = filter.split(/\s+AND\s+/).map((t) => {
    const m = t.trim().match(/^labels\.([a-z0-9_-]+)\s*=\s*"([^"]*)"$/);
    if (!m) throw new ApiError(400, 'INVALID_ARGUMENT', `Unsupported filter: ${filter}`);
    return [m[1]!, m[2]!] as const;
  });
  return (job) => terms.every(([k, v]) => job.labels[k] === v);
}
