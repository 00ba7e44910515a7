/**
 * The job side of a stage computed on Vertex AI (`lockstep job run --remote <url> --key <key>`,
 * the command of every replica): reads the job spec from the remote, checks the image carries the
 * stage's code (same fingerprint), checks the deps out by hash into a scratch workspace, runs the
 * stage (or this replica's shard, from CLUSTER_SPEC), commits and pushes its outputs and writes
 * `result.json` (or the shard pointer). Its log lines go to the remote in small chunks as it runs,
 * so the repro that follows the job streams them; a failure also leaves `errors/<replica>.txt`.
 * The scratch workspace is removed at the end, except in a Vertex AI container (whose disk goes
 * with it).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt } from '../repo.ts';
import type { ArtifactRef, Shard, StageContext, StageDef } from '../types.ts';
import type { Output } from '../output.ts';
import { ConfigError, StageError, UsageError, toOneLine } from '../errors.ts';
import { openRemote } from '../store/open-remote.ts';
import { commitArtifact, artifactObjects, dirsOf } from '../store/artifacts.ts';
import { checkoutArtifact } from '../store/checkout.ts';
import { pushObjects } from '../store/transfer.ts';
import { Cache } from '../store/cache.ts';
import { loadPipeline } from '../pipeline/load.ts';
import { codeFingerprint } from '../pipeline/fingerprint.ts';
import { openNamedStore, type NamedStore } from './named.ts';
import { jobPaths, jobSpecSchema, shardDir, type JobResult } from './spec.ts';
import { replicaFromClusterSpec } from './cluster-spec.ts';

export interface RunJobOptions {
  remote: string;
  key: string;
  /** Where the job's own output goes (the container's stdout/stderr). */
  out: Output;
  /** Image working directory holding the code (default: cwd). */
  imageRoot?: string;
  /** The pipeline module loaded when the job spec names none (an absolute path in the image). */
  defaultPipeline: string;
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

/** Log lines kept and written to the remote as numbered chunks about once a second. */
class ChunkLog {
  private lines: string[] = [];
  private seq = 0;
  private flushing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout;
  constructor(
    private readonly store: NamedStore,
    private readonly prefix: string,
  ) {
    this.timer = setInterval(() => void this.flush(), 1000);
    this.timer.unref();
  }
  add(line: string): void {
    this.lines.push(line);
  }
  flush(): Promise<void> {
    if (this.lines.length === 0) return this.flushing;
    const text = this.lines.join('\n') + '\n';
    this.lines = [];
    const name = `${this.prefix}${String(this.seq++).padStart(6, '0')}.txt`;
    // Only if absent: each chunk has its own name, so the write is idempotent and the storage
    // client retries it on a dropped connection. A chunk that still cannot be written is missing
    // from the streamed log (the container's own output keeps it); it never fails the job, and
    // never surfaces as an unhandled rejection from the timer (which would kill the replica).
    this.flushing = this.flushing.then(() =>
      this.store.write(name, text, { ifGeneration: '0' }).then(
        () => undefined,
        () => undefined,
      ),
    );
    return this.flushing;
  }
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}

/** Runs the job described at `jobs/<key>/spec.json` on `remote`. */
export async function runJob(options: RunJobOptions): Promise<void> {
  // The key names paths on the remote (jobs/<key>/...): anything but a run key could point the
  // job's logs and errors outside the remote's prefix (../..).
  if (!/^[0-9a-f]{64}$/.test(options.key))
    throw new UsageError(
      `--key: not a run key "${options.key}". Pass the 64-hex run key lockstep repro submitted the job with.`,
    );
  const env = options.env ?? process.env;
  const imageRoot = options.imageRoot ?? process.cwd();
  const named = await openNamedStore(options.remote, imageRoot);
  const replica = replicaFromClusterSpec(env.CLUSTER_SPEC);
  const jobId = env.CLOUD_ML_JOB_ID ?? 'local';
  const log = new ChunkLog(named, `${jobPaths.logs(options.key, jobId)}${replica.name}/`);
  const out: Output = {
    isTTY: false,
    out: (line) => {
      options.out.out(line);
      log.add(line);
    },
    err: (line) => {
      options.out.err(line);
      log.add(line);
    },
  };
  const scratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), `${SCRATCH_PREFIX}${process.pid}-`));
  // A Vertex AI replica (CLOUD_ML_JOB_ID set) leaves its scratch workspace to the container,
  // whose disk is thrown away with it: deleting hundreds of files first would only delay the
  // exit the service waits for before it reports the job's state. Run anywhere else, the job
  // removes it. Should CLOUD_ML_JOB_ID be set where the disk stays (a shell on a laptop), the
  // workspaces of earlier jobs, whose processes are gone, are removed while this one runs, so
  // at most one is left behind instead of one per job.
  const ownsScratch = env.CLOUD_ML_JOB_ID === undefined;
  const swept = ownsScratch ? undefined : sweepLeftScratch(path.dirname(scratch));
  try {
    await runInScratch({ ...options, out, imageRoot }, named, scratch, replica);
  } catch (err) {
    const line = toOneLine(err);
    out.err(`error: ${line}`);
    await named.write(jobPaths.error(options.key, replica.name), line + '\n').catch(() => undefined);
    throw err;
  } finally {
    await log.close().catch(() => undefined);
    if (ownsScratch) await fs.promises.rm(scratch, { recursive: true, force: true });
    await swept;
  }
}

/** Scratch workspaces are `<tmpdir>/lockstep-job-<pid>-<random>`. */
const SCRATCH_PREFIX = 'lockstep-job-';

/** Removes the scratch workspaces in `tmp` of job processes that are gone (never throws). */
async function sweepLeftScratch(tmp: string): Promise<void> {
  const names = await fs.promises.readdir(tmp).catch(() => [] as string[]);
  await Promise.all(
    names.map(async (name) => {
      const m = /^lockstep-job-(\d+)-[^/]+$/.exec(name);
      if (!m || processAlive(Number(m[1]))) return;
      await fs.promises.rm(path.join(tmp, name), { recursive: true, force: true }).catch(() => undefined);
    }),
  );
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: a process of another user holds that pid.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

async function runInScratch(
  options: RunJobOptions & { imageRoot: string },
  named: NamedStore,
  scratch: string,
  replica: { name: string; index: number },
): Promise<void> {
  const { key, out } = options;
  const specText = await named.read(jobPaths.spec(key));
  if (!specText) {
    throw new ConfigError(
      `${options.remote}/${jobPaths.spec(key)}: job spec not found. Submit the job with lockstep repro.`,
    );
  }
  const spec = jobSpecSchema.parse(JSON.parse(specText.text));
  const image = repoAt(options.imageRoot);
  const repo = repoAt(scratch);
  const remote = await openRemote(options.remote, { baseDir: options.imageRoot });
  // The deps are checked out (into the scratch workspace, where nothing runs yet) while the
  // image's pipeline loads and its code is compared with the spec's: the two wait on different
  // things (the remote; compiling the stages' modules). A code mismatch is still the error
  // reported, once the checkout is stopped.
  const stopCheckout = new AbortController();
  const checkout = (async () => {
    // Straight into the workspace, not through the cache: the scratch disk is used once, and
    // each input byte is then written once and hashed once.
    for (const dep of spec.deps)
      await checkoutArtifact(repo, dep, { remote, signal: stopCheckout.signal, direct: true });
  })();
  checkout.catch(() => undefined);
  let stage: StageDef | undefined;
  try {
    const factory = await loadPipeline({
      named: spec.pipeline,
      cwd: options.imageRoot,
      fallback: options.defaultPipeline,
    });
    stage = factory(spec.params).find((s) => s.name === spec.stage);
    if (!stage)
      throw new ConfigError(
        `job: the image's pipeline has no stage "${spec.stage}". Rebuild the image from this commit.`,
      );
    const code = codeFingerprint(image, stage);
    if (code !== spec.code) {
      throw new ConfigError(
        `image: code of stage ${spec.stage} differs from the repository's "${code.slice(0, 12)} != ${spec.code.slice(0, 12)}". Rebuild and push the image from this commit.`,
      );
    }
  } catch (err) {
    stopCheckout.abort(err);
    await checkout.catch(() => undefined);
    throw err;
  }
  out.err(`${spec.stage}: ${replica.name}: checking out ${spec.deps.length} dep(s)`);
  await checkout;
  const ctx: StageContext = {
    root: scratch,
    params: spec.params,
    out,
    abs: (rel) => path.join(scratch, rel),
    signal: options.signal ?? new AbortController().signal,
    inputs: spec.inputs,
  };
  // The scratch disk is thrown away after this run, so its cache is not made durable (no fsync,
  // no sync) and the outputs are hard-linked into it rather than copied: each output byte is
  // written once, by the stage, then hashed and pushed.
  const cache = new Cache(repo, { durable: false });
  const commitOptions = { cache, link: 'hardlink', linkFallback: true } as const;
  const push = async (refs: ArtifactRef[]): Promise<void> => {
    const oids = (await Promise.all(refs.map((r) => artifactObjects(repo, r, { cache })))).flat();
    await pushObjects(repo, remote, oids, { manifests: dirsOf(refs) });
  };
  if (spec.shards > 1) {
    if (!stage.shards) throw new StageError(spec.stage, `does not shard; run it with replicas: 1`);
    const shard: Shard = { index: replica.index, count: spec.shards };
    if (shard.index >= shard.count) {
      throw new StageError(
        spec.stage,
        `replica ${replica.name} has no shard (task index ${shard.index} of ${shard.count})`,
      );
    }
    const rel = shardDir(spec.stage, shard.index);
    for (const o of stage.outs) fs.mkdirSync(path.dirname(ctx.abs(o)), { recursive: true });
    await stage.shards.run(ctx, shard, ctx.abs(rel));
    const ref = await commitArtifact(repo, rel, commitOptions);
    await push([ref]);
    await named.write(jobPaths.shard(key, shard.index, shard.count), JSON.stringify(ref) + '\n');
    out.err(`${spec.stage}: shard ${shard.index + 1}/${shard.count} written (${ref.hash.slice(0, 12)})`);
    return;
  }
  if (replica.index !== 0) return; // a single-machine stage runs on the primary replica only
  for (const o of stage.outs) fs.mkdirSync(path.dirname(ctx.abs(o)), { recursive: true });
  const result = (await stage.run(ctx)) || {};
  const outs: ArtifactRef[] = [];
  for (const rel of stage.outs) {
    if (!fs.existsSync(ctx.abs(rel))) throw new StageError(spec.stage, `out "${rel}" was not written`);
    outs.push(await commitArtifact(repo, rel, commitOptions));
  }
  await push(outs);
  const record: JobResult = {
    outs,
    ...(result.summary ? { summary: result.summary } : {}),
    ...(result.failed ? { failed: true } : {}),
    ...(result.facts && Object.keys(result.facts).length ? { facts: result.facts } : {}),
  };
  // Written last: a result names only objects already on the remote.
  await named.write(jobPaths.result(key), JSON.stringify(record) + '\n');
  out.err(`${spec.stage}: outputs written (${outs.map((o) => o.hash.slice(0, 12)).join(', ')})`);
}
