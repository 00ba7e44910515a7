/**
 * Stages computed as Vertex AI CustomJobs (the StageExecutor the runner calls for stages whose
 * compute backend is `vertex`). Per stage: if the remote already holds the outputs of this run
 * key, no job runs; otherwise the deps' objects that the remote lacks are pushed, the job spec is
 * written, and the one live job of this key is found (reattach) or created under a claim written
 * with an if-absent precondition, so two repro processes never submit two jobs. The job is
 * followed (state, elapsed time, its log lines, a progress line in CI) until it ends; then the
 * outputs (or each shard, merged here) are pulled, verified and checked out. Interrupt and
 * timeout cancel the job (once); quota and transient API errors are retried.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, StageContext, StageDef, StageResult } from '../types.ts';
import type { StageCheck } from '../pipeline/plan.ts';
import type { StageExecutor } from '../pipeline/run.ts';
import { StageError } from '../errors.ts';
import { artifactRefSchema } from '../lockfile.ts';
import { openRemote } from '../store/open-remote.ts';
import type { Remote } from '../store/remote.ts';
import { artifactObjects, checkoutArtifact, commitArtifact } from '../store/artifacts.ts';
import { pushObjects } from '../store/transfer.ts';
import { Cache } from '../store/cache.ts';
import { openNamedStore, type NamedStore } from './named.ts';
import { jobPaths, jobResultSchema, type JobSpec } from './spec.ts';
import type { ComputePlan, ResolvedStageCompute, VertexSettings } from './resolve.ts';
import {
  jobServiceClient,
  jobState,
  TERMINAL_STATES,
  withRetry,
  type CustomJob,
  type JobServiceClient,
} from './jobs-client.ts';

export interface VertexExecutorOptions {
  /** Pipeline module relative to the repository root (default: the image's stages/pipeline.ts). */
  pipeline?: string;
  /** Poll interval in ms (default 10 s; LOCKSTEP_VERTEX_POLL_MS overrides). */
  pollMs?: number;
}

/**
 * Waits `ms`, or less when `signal` aborts meanwhile: a Ctrl-C during a 10 s poll cancels the
 * job at once (a user who waits 10 s presses Ctrl-C again, which exits without cancelling).
 */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** The console page of a job. */
export function consoleLink(job: string, v: VertexSettings): string {
  const id = job.split('/').pop();
  return `https://console.cloud.google.com/vertex-ai/locations/${v.region}/training/${id}/cpu?project=${v.project}`;
}

export class VertexExecutor implements StageExecutor {
  private client?: JobServiceClient;
  private named?: NamedStore;
  private remote?: Remote;
  private readonly pollMs: number;

  constructor(
    private readonly repo: Repo,
    private readonly plan: ComputePlan,
    private readonly options: VertexExecutorOptions = {},
  ) {
    this.pollMs = options.pollMs ?? Number(process.env.LOCKSTEP_VERTEX_POLL_MS ?? 10_000);
  }

  handles(stage: string): boolean {
    return this.plan.stages.get(stage)?.backend === 'vertex';
  }

  private get vertex(): VertexSettings {
    return this.plan.vertex!;
  }

  private async open(): Promise<{ client: JobServiceClient; named: NamedStore; remote: Remote }> {
    this.client ??= jobServiceClient(this.vertex.region);
    this.named ??= await openNamedStore(this.vertex.remote, this.repo.root);
    this.remote ??= await openRemote(this.vertex.remote, { baseDir: this.repo.root });
    return { client: this.client, named: this.named, remote: this.remote };
  }

  async run(stage: StageDef, check: StageCheck, ctx: StageContext): Promise<StageResult | void> {
    const compute = this.plan.stages.get(stage.name)!;
    const key = check.key!;
    const { named } = await this.open();
    const started = Date.now();
    const shards = compute.replicas;
    let job: CustomJob | undefined;
    if (!(await this.outputsOnRemote(key, shards))) {
      await this.pushDeps(check.deps!, ctx);
      const spec: JobSpec = {
        stage: stage.name,
        key,
        code: check.code,
        deps: check.deps!,
        params: ctx.params,
        inputs: check.inputs,
        ...(this.options.pipeline ? { pipeline: this.options.pipeline } : {}),
        shards,
      };
      await named.write(jobPaths.spec(key), JSON.stringify(spec) + '\n');
      const { job: found, submitted } = await this.attachOrSubmit(stage.name, key, compute, ctx);
      job = await this.follow(stage.name, key, found, submitted, compute, ctx);
    } else {
      ctx.out.err(
        `${stage.name}: outputs of this run are on ${this.vertex.remote} already; no job submitted`,
      );
    }
    const result = await this.materialize(stage, key, shards, ctx);
    const seconds = (Date.now() - started) / 1000;
    const jobSeconds = job ? jobRunSeconds(job) : 0;
    return {
      ...result,
      facts: {
        ...result.facts,
        compute: 'vertex',
        machine_type: compute.machineType,
        replicas: compute.replicas,
        ...(compute.accelerator
          ? { accelerator: `${compute.accelerator.type}x${compute.accelerator.count}` }
          : {}),
        ...(job?.name ? { job: job.name } : {}),
        wall_seconds: Number(seconds.toFixed(3)),
        machine_hours: Number(((jobSeconds * compute.replicas) / 3600).toFixed(6)),
      },
    };
  }

  /** True when the remote holds this key's result (or every shard) and the objects it names. */
  private async outputsOnRemote(key: string, shards: number): Promise<boolean> {
    const refs = await this.remoteRefs(key, shards);
    if (!refs) return false;
    const { remote } = await this.open();
    const oids = refs.map((r) => r.hash);
    return (await remote.has(oids)).size === new Set(oids).size;
  }

  private async remoteRefs(key: string, shards: number): Promise<ArtifactRef[] | undefined> {
    const { named } = await this.open();
    if (shards > 1) {
      const refs: ArtifactRef[] = [];
      for (let i = 0; i < shards; i++) {
        const obj = await named.read(jobPaths.shard(key, i, shards));
        if (!obj) return undefined;
        refs.push(artifactRefSchema.parse(JSON.parse(obj.text)));
      }
      return refs;
    }
    const obj = await named.read(jobPaths.result(key));
    return obj ? jobResultSchema.parse(JSON.parse(obj.text)).outs : undefined;
  }

  private async pushDeps(deps: ArtifactRef[], ctx: StageContext): Promise<void> {
    const { remote } = await this.open();
    const cache = new Cache(this.repo);
    const oids: string[] = [];
    for (const dep of deps) {
      // A dep that is nobody's out (a plain data directory) is not in the cache yet.
      const ref = await commitArtifact(this.repo, dep.path, { cache });
      oids.push(...(await artifactObjects(this.repo, ref, { cache })));
    }
    const r = await pushObjects(this.repo, remote, oids, { signal: ctx.signal });
    if (r.transferred > 0) ctx.out.err(`pushed ${r.transferred} input object(s) to ${remote.url}`);
  }

  private labels(stage: string, key: string): Record<string, string> {
    return {
      'lockstep-stage': stage.toLowerCase().replace(/[^a-z0-9_-]/g, '-'),
      'lockstep-key': key.slice(0, 40),
    };
  }

  private async liveJob(key: string): Promise<CustomJob | undefined> {
    const { client } = await this.open();
    const [jobs] = await withRetry(() =>
      client.listCustomJobs({
        parent: `projects/${this.vertex.project}/locations/${this.vertex.region}`,
        filter: `labels.lockstep-key="${key.slice(0, 40)}"`,
      }),
    );
    return jobs.find((j) => !TERMINAL_STATES.has(jobState(j)));
  }

  private async attachOrSubmit(
    stage: string,
    key: string,
    compute: ResolvedStageCompute,
    ctx: StageContext,
  ): Promise<{ job: CustomJob; submitted: boolean }> {
    const { client, named } = await this.open();
    const claimName = jobPaths.claim(key);
    const owner = `${os.hostname()}:${process.pid}`;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const live = await this.liveJob(key);
      if (live) {
        ctx.out.err(`${stage}: reattaching to running job ${live.name} (${jobState(live)})`);
        return { job: live, submitted: false };
      }
      const claim = await named.read(claimName);
      let take: string | undefined;
      if (!claim) take = '0';
      else {
        const held = JSON.parse(claim.text) as { job?: string; at?: number };
        // A claim whose job ended (failed, cancelled) or that names no job after two minutes
        // (its submitter died) is taken over at the generation read, so only one process wins.
        if (held.job) {
          const [j] = await withRetry(() => client.getCustomJob({ name: held.job! }));
          // It finished between our look at the remote and now: follow it (at once done). A
          // job that succeeded long ago but whose outputs left the remote since (gc, a deleted
          // prefix) is a stale claim like a failed one: following it would fail on every run.
          if (jobState(j) === 'JOB_STATE_SUCCEEDED' && (await this.outputsOnRemote(key, compute.replicas)))
            return { job: j, submitted: false };
          if (TERMINAL_STATES.has(jobState(j))) take = claim.generation;
        } else if (Date.now() - (held.at ?? 0) > 120_000) take = claim.generation;
      }
      if (
        take !== undefined &&
        (await named.write(claimName, JSON.stringify({ owner, at: Date.now() }), { ifGeneration: take }))
      ) {
        const job = await this.submit(stage, key, compute, ctx);
        await named.write(claimName, JSON.stringify({ owner, at: Date.now(), job: job.name }));
        return { job, submitted: true };
      }
      await sleep(Math.min(this.pollMs, 1000));
    }
    throw new StageError(
      stage,
      `another process holds ${this.vertex.remote}/${claimName} and no job appeared. Delete the claim if its process is gone`,
    );
  }

  private async submit(
    stage: string,
    key: string,
    compute: ResolvedStageCompute,
    ctx: StageContext,
  ): Promise<CustomJob> {
    const { client } = await this.open();
    const v = this.vertex;
    const pool = (replicaCount: number) => ({
      machineSpec: {
        machineType: compute.machineType,
        ...(compute.accelerator
          ? {
              acceleratorType: compute.accelerator.type as never,
              acceleratorCount: compute.accelerator.count,
            }
          : {}),
      },
      replicaCount,
      diskSpec: { bootDiskType: 'pd-ssd', bootDiskSizeGb: 100 },
      containerSpec: {
        imageUri: v.image,
        command: ['node', 'bin/lockstep.mjs', 'job', 'run'],
        args: ['--remote', v.remote, '--key', key],
        env: [{ name: 'LOCKSTEP_REMOTE', value: v.remote }],
      },
    });
    // Vertex AI wants exactly one primary replica in pool 0; the other replicas go to pool 1.
    const workerPoolSpecs = [pool(1), ...(compute.replicas > 1 ? [pool(compute.replicas - 1)] : [])];
    const [job] = await withRetry(
      () =>
        client.createCustomJob({
          parent: `projects/${v.project}/locations/${v.region}`,
          customJob: {
            displayName: `lockstep-${stage}-${key.slice(0, 12)}`,
            labels: this.labels(stage, key),
            jobSpec: {
              workerPoolSpecs,
              baseOutputDirectory: { outputUriPrefix: `${v.remote}/jobs/${key}/output` },
              ...(v.serviceAccount ? { serviceAccount: v.serviceAccount } : {}),
              scheduling: { timeout: { seconds: compute.timeoutSeconds } },
            },
          },
        }),
      {
        signal: ctx.signal,
        onRetry: (err, ms) =>
          ctx.out.err(
            `${stage}: ${(err as Error).message.split('\n')[0]}; retrying in ${(ms / 1000).toFixed(1)} s`,
          ),
      },
    );
    ctx.out.err(
      `${stage}: submitted ${job.name} (${compute.replicas} x ${compute.machineType}) ${consoleLink(job.name!, v)}`,
    );
    return job;
  }

  private async follow(
    stage: string,
    key: string,
    first: CustomJob,
    submitted: boolean,
    compute: ResolvedStageCompute,
    ctx: StageContext,
  ): Promise<CustomJob> {
    const { client, named } = await this.open();
    const name = first.name!;
    const jobId = name.split('/').pop()!;
    const since = first.createTime ? timestampMs(first.createTime) : Date.now();
    const seenLogs = new Set<string>();
    let state = '';
    let cancelled = false;
    let timedOut = false;
    let lastProgress = 0;
    const ci = process.env.CI === 'true';
    const cancel = async (why: string) => {
      if (cancelled) return;
      cancelled = true;
      ctx.out.err(`${stage}: ${why}: cancelling ${name}`);
      await withRetry(() => client.cancelCustomJob({ name }));
    };
    const streamLogs = async () => {
      for (const logName of await named.list(jobPaths.logs(key, jobId))) {
        if (seenLogs.has(logName)) continue;
        seenLogs.add(logName);
        const replica = logName.split('/').slice(-2, -1)[0];
        const text = (await named.read(logName))?.text ?? '';
        for (const line of text.split('\n').filter(Boolean)) ctx.out.err(`${stage} [${replica}] ${line}`);
      }
    };
    let job: CustomJob;
    for (;;) {
      if (ctx.signal.aborted && !cancelled && submitted) await cancel('interrupted');
      const elapsed = (Date.now() - since) / 1000;
      if (!timedOut && elapsed > compute.timeoutSeconds) {
        timedOut = true;
        await cancel(`timed out after ${compute.timeoutSeconds} s`);
      }
      [job] = await withRetry(() => client.getCustomJob({ name }));
      const now = jobState(job);
      await streamLogs().catch(() => undefined);
      if (now !== state) {
        state = now;
        ctx.out.err(
          `${stage}: ${jobId} ${state.replace('JOB_STATE_', '').toLowerCase()} (${elapsed.toFixed(0)} s)`,
        );
      } else if (ci && Date.now() - lastProgress > 30_000) {
        lastProgress = Date.now();
        ctx.out.err(
          `${stage}: ${jobId} ${state.replace('JOB_STATE_', '').toLowerCase()}, ${elapsed.toFixed(0)} s elapsed`,
        );
      }
      if (TERMINAL_STATES.has(state)) break;
      if (ctx.signal.aborted && !submitted) {
        throw new StageError(stage, `interrupted; job ${name} (started by another process) keeps running`);
      }
      // Once interrupted, the cancel is followed at a short interval to its end.
      await sleep(ctx.signal.aborted ? Math.min(this.pollMs, 1000) : this.pollMs, ctx.signal);
    }
    if (state === 'JOB_STATE_SUCCEEDED') return job;
    const link = consoleLink(name, this.vertex);
    if (timedOut) {
      throw new StageError(
        stage,
        `Vertex AI job ${jobId} timed out after ${compute.timeoutSeconds} s and was cancelled (compute.stages.${stage}.timeout). ${link}`,
      );
    }
    if (state === 'JOB_STATE_CANCELLED')
      throw new StageError(stage, `Vertex AI job ${jobId} was cancelled. ${link}`);
    const replicaErrors = await this.replicaErrors(key);
    const message = (job.error?.message ?? state).replace(/\.$/, '');
    throw new StageError(
      stage,
      `Vertex AI job ${jobId} failed: ${message}${replicaErrors ? `; ${replicaErrors}` : ''}. ${link}`,
    );
  }

  private async replicaErrors(key: string): Promise<string> {
    const { named } = await this.open();
    const names = await named.list(`jobs/${key}/errors/`);
    const parts: string[] = [];
    for (const n of names) {
      const text = (await named.read(n))?.text.trim();
      if (text) parts.push(`${path.basename(n, '.txt')}: ${text}`);
    }
    return parts.join('; ');
  }

  /** Pulls and checks out the outputs (or merges the shards); returns the stage's verdict. */
  private async materialize(
    stage: StageDef,
    key: string,
    shards: number,
    ctx: StageContext,
  ): Promise<StageResult> {
    const { named, remote } = await this.open();
    if (shards > 1) {
      const refs = await this.remoteRefs(key, shards);
      if (!refs)
        throw new StageError(
          stage.name,
          `job succeeded but not every shard of ${key.slice(0, 12)} is on ${remote.url}`,
        );
      for (const ref of refs) await checkoutArtifact(this.repo, ref, { remote });
      try {
        return (
          (await stage.shards!.merge(
            ctx,
            refs.map((r) => ctx.abs(r.path)),
          )) || {}
        );
      } finally {
        for (const ref of refs) fs.rmSync(ctx.abs(ref.path), { recursive: true, force: true });
      }
    }
    const obj = await named.read(jobPaths.result(key));
    if (!obj)
      throw new StageError(
        stage.name,
        `job succeeded but wrote no result to ${remote.url}/${jobPaths.result(key)}`,
      );
    const result = jobResultSchema.parse(JSON.parse(obj.text));
    for (const ref of result.outs) {
      if (!stage.outs.includes(ref.path))
        throw new StageError(stage.name, `job wrote an undeclared out "${ref.path}"`);
      await checkoutArtifact(this.repo, ref, { remote });
    }
    return {
      ...(result.summary ? { summary: result.summary } : {}),
      ...(result.failed ? { failed: true } : {}),
      ...(result.facts ? { facts: result.facts } : {}),
    };
  }
}

function timestampMs(t: { seconds?: unknown; nanos?: number | null } | string): number {
  if (typeof t === 'string') return Date.parse(t);
  return Number(t.seconds ?? 0) * 1000 + Math.round((t.nanos ?? 0) / 1e6);
}

/** Seconds the job ran (start to end), for machine-hours. */
function jobRunSeconds(job: CustomJob): number {
  if (!job.startTime || !job.endTime) return 0;
  return Math.max(0, (timestampMs(job.endTime as never) - timestampMs(job.startTime as never)) / 1000);
}
