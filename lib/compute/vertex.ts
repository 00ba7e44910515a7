/**
 * Stages computed as Vertex AI CustomJobs (the StageExecutor the runner calls for stages whose
 * compute backend is `vertex`). Per stage: if the remote already holds the outputs of this run
 * key, no job runs; otherwise the deps' objects that the remote lacks are pushed, the job spec is
 * written, and the one live job of this key is found (reattach) or created under a claim written
 * with an if-absent precondition, so two repro processes never submit two jobs. The job is
 * followed (state, elapsed time, its log lines, a progress line in CI) until it ends, its outputs'
 * objects pulled into the cache as soon as it has written them (output-prefetch.ts); then the
 * outputs (or each shard, merged here) are verified and checked out. Interrupt and
 * timeout cancel the job (once); quota and transient API errors are retried.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, StageContext, StageDef, StageResult } from '../types.ts';
import type { StageCheck } from '../pipeline/plan.ts';
import type { StageExecutor } from '../pipeline/run.ts';
import { StageError } from '../errors.ts';
import { artifactRefSchema } from '../lockfile.ts';
import { openRemote } from '../store/open-remote.ts';
import type { Remote } from '../store/remote.ts';
import { artifactObjects, commitArtifact, dirsOf } from '../store/artifacts.ts';
import { checkoutArtifact } from '../store/checkout.ts';
import { pushObjects } from '../store/transfer.ts';
import { Cache } from '../store/cache.ts';
import { openNamedStore, type NamedStore } from './named.ts';
import { jobPaths, jobResultSchema, type JobSpec } from './spec.ts';
import type { ComputePlan, ResolvedStageCompute, VertexSettings } from './resolve.ts';
import {
  jobServiceClient,
  jobState,
  TERMINAL_STATES,
  vertexPollMs,
  type CustomJob,
  type JobServiceClient,
} from './jobs-client.ts';
import { consoleLink, labelValue, submitCustomJob } from './job-submit.ts';
import { followJob, jobTimes } from './job-follow.ts';
import { attachOrSubmit, keyLabel } from './job-claim.ts';
import { LogFollower } from './job-logs.ts';
import { OutputPrefetch } from './output-prefetch.ts';

export { consoleLink } from './job-submit.ts';

export interface VertexExecutorOptions {
  /** Pipeline module relative to the repository root (default: the image's stages/pipeline.ts). */
  pipeline?: string;
  /** Poll interval in ms (default 10 s; LOCKSTEP_VERTEX_POLL_MS overrides). */
  pollMs?: number;
}

/** Shortest time (ms) between two listings of a job's log chunks (written about once a second). */
const LOG_POLL_MS = 1000;

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
    this.pollMs = options.pollMs ?? vertexPollMs();
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
    const started = Date.now();
    const { named } = await this.open();
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
      const { client } = await this.open();
      const { job: found, submitted } = await attachOrSubmit({
        client,
        named,
        vertex: this.vertex,
        stage: stage.name,
        key,
        out: ctx.out,
        pollMs: this.pollMs,
        outputsOnRemote: () => this.outputsOnRemote(key, shards),
        submit: () => this.submit(stage.name, key, compute, ctx),
      });
      job = await this.follow(stage.name, key, found, submitted, compute, ctx);
    } else {
      ctx.out.err(
        `${stage.name}: outputs of this run are on ${this.vertex.remote} already; no job submitted`,
      );
    }
    const result = await this.materialize(stage, key, shards, ctx);
    const seconds = (Date.now() - started) / 1000;
    const jobSeconds = job ? jobTimes(job).running : 0;
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
    const refs: ArtifactRef[] = [];
    for (const dep of deps) {
      // A dep that is nobody's out (a plain data directory) is not in the cache yet.
      const ref = await commitArtifact(this.repo, dep.path, { cache });
      refs.push(ref);
      oids.push(...(await artifactObjects(this.repo, ref, { cache })));
    }
    const r = await pushObjects(this.repo, remote, oids, { signal: ctx.signal, manifests: dirsOf(refs) });
    if (r.transferred > 0) ctx.out.err(`pushed ${r.transferred} input object(s) to ${remote.url}`);
  }

  private async submit(
    stage: string,
    key: string,
    compute: ResolvedStageCompute,
    ctx: StageContext,
  ): Promise<CustomJob> {
    const { client, named } = await this.open();
    if (ctx.signal.aborted) {
      // Ctrl-C while the claim was taken: no job is created only to be cancelled, and the claim,
      // which names none, is left stale at once so the next run need not wait it out.
      await named.write(jobPaths.claim(key), JSON.stringify({ at: 0 })).catch(() => undefined);
      ctx.signal.throwIfAborted();
    }
    return submitCustomJob(client, this.vertex, {
      label: stage,
      displayName: `lockstep-${stage}-${key.slice(0, 12)}`,
      labels: { 'lockstep-stage': labelValue(stage), 'lockstep-key': keyLabel(key) },
      args: ['run', '--remote', this.vertex.remote, '--key', key],
      outputUriPrefix: `${this.vertex.remote}/jobs/${key}/output`,
      compute,
      signal: ctx.signal,
      out: ctx.out,
    });
  }

  private async follow(
    stage: string,
    key: string,
    first: CustomJob,
    submitted: boolean,
    compute: ResolvedStageCompute,
    ctx: StageContext,
  ): Promise<CustomJob> {
    const { client, named, remote } = await this.open();
    const name = first.name!;
    const jobId = name.split('/').pop()!;
    const logs = new LogFollower(named, jobPaths.logs(key, jobId), (replica, line) =>
      ctx.out.err(`${stage} [${replica}] ${line}`),
    );
    const prefetch = new OutputPrefetch(
      this.repo,
      remote,
      () => this.remoteRefs(key, compute.replicas),
      ctx.signal,
    );
    let logsAt = 0;
    const end = await followJob(client, first, {
      label: stage,
      timeoutSeconds: compute.timeoutSeconds,
      pollMs: this.pollMs,
      owned: submitted,
      signal: ctx.signal,
      out: ctx.out,
      onPoll: async (job) => {
        // The replicas write a log chunk about once a second: listing them more often than that
        // finds nothing new. The last poll (the job ended) reads whatever is left.
        const readLogs = TERMINAL_STATES.has(jobState(job)) || Date.now() - logsAt >= LOG_POLL_MS;
        if (readLogs) logsAt = Date.now();
        await Promise.all([readLogs ? logs.poll().catch(() => undefined) : undefined, prefetch.poll()]);
      },
      ending: () => prefetch.started,
    }).catch(async (err: unknown) => {
      await prefetch.stop();
      throw err;
    });
    // The checkout (materialize) takes what the prefetch pulled and never races it; a job that
    // did not succeed stops the prefetch instead of waiting for all of its outputs.
    if (end.state === 'JOB_STATE_SUCCEEDED') {
      await prefetch.settled();
      return end.job;
    }
    await prefetch.stop();
    const link = consoleLink(name, this.vertex);
    if (ctx.signal.aborted && !submitted)
      throw new StageError(stage, `interrupted; job ${name} (started by another process) keeps running`);
    if (end.timedOut) {
      throw new StageError(
        stage,
        `Vertex AI job ${jobId} timed out after ${end.runningSeconds.toFixed(0)}s running (queued ${end.queuedSeconds.toFixed(0)}s) and was cancelled (compute.stages.${stage}.timeout: ${compute.timeoutSeconds}). ${link}`,
      );
    }
    if (end.state === 'JOB_STATE_CANCELLED')
      throw new StageError(stage, `Vertex AI job ${jobId} was cancelled. ${link}`);
    const replicaErrors = await this.replicaErrors(key);
    const message = (end.job.error?.message ?? end.state).replace(/\.$/, '');
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
