/**
 * Sharded stages without Vertex AI (a GitHub job matrix): `lockstep repro featurize --shard i/N`
 * computes shard `i` of `N` here and writes it to the default remote exactly as a Vertex AI
 * replica does (the shard directory's objects, then `jobs/<run key>/shards/<i>-of-<N>.json`);
 * `lockstep repro --merge-shards N` then computes every sharding stage by pulling its N shards
 * of the current run key and merging them with the stage's own merge, so the outs (and the
 * lockfile) equal a single-machine run. The run key is the run-cache key: every matrix job on
 * the same commit and inputs computes the same one.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Shard, StageContext, StageDef, StageResult } from '../types.ts';
import type { StageCheck } from '../pipeline/plan.ts';
import type { StageExecutor } from '../pipeline/run.ts';
import type { Remote } from '../store/remote.ts';
import { StageError, UsageError } from '../errors.ts';
import { artifactRefSchema } from '../lockfile.ts';
import { artifactObjects, commitArtifact, dirsOf } from '../store/artifacts.ts';
import { checkoutArtifact } from '../store/checkout.ts';
import { pushObjects } from '../store/transfer.ts';
import { Cache } from '../store/cache.ts';
import { openNamedStore } from './named.ts';
import { jobPaths, shardDir } from './spec.ts';

/** Parses `--shard i/N` (1-based i, as a job matrix counts) into a 0-based shard. */
export function parseShardFlag(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new UsageError(`--shard: expected i/N with 1 <= i <= N "${text}". Pass e.g. --shard 2/4.`);
  }
  return { index: index - 1, count };
}

/** Parses `--merge-shards N`. */
export function parseShardCount(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError(
      `--merge-shards: expected a positive integer "${text}". Pass e.g. --merge-shards 4.`,
    );
  }
  return n;
}

/** Computes shard `shard` of `stage` (its deps as hashed in `check`) and writes it to the remote. */
export async function runShardToRemote(
  repo: Repo,
  stage: StageDef,
  check: StageCheck,
  shard: Shard,
  remote: Remote,
  ctx: StageContext,
): Promise<ArtifactRef> {
  if (!stage.shards) throw new UsageError(`--shard: stage "${stage.name}" does not shard. Shard featurize.`);
  if (!check.key) {
    throw new StageError(
      stage.name,
      `its deps are not all present, so it has no run key. Run its upstream first`,
    );
  }
  const named = await openNamedStore(remote.url, repo.root);
  const rel = shardDir(stage.name, shard.index);
  const abs = path.join(repo.root, rel);
  await fs.promises.rm(abs, { recursive: true, force: true });
  for (const o of stage.outs) fs.mkdirSync(path.dirname(ctx.abs(o)), { recursive: true });
  try {
    await stage.shards.run(ctx, shard, abs);
    const cache = new Cache(repo);
    const ref = await commitArtifact(repo, rel, { cache });
    const oids = await artifactObjects(repo, ref, { cache });
    await pushObjects(repo, remote, oids, { signal: ctx.signal, manifests: dirsOf([ref]) });
    // The pointer last: it names only objects already on the remote.
    await named.write(jobPaths.shard(check.key, shard.index, shard.count), JSON.stringify(ref) + '\n');
    return ref;
  } finally {
    await fs.promises.rm(abs, { recursive: true, force: true });
  }
}

/**
 * Computes sharding stages by merging `count` shards from `remote`; other stages go to `inner`
 * (a Vertex AI executor) or run here.
 */
export class ShardMergeExecutor implements StageExecutor {
  constructor(
    private readonly repo: Repo,
    private readonly remote: Remote,
    private readonly count: number,
    private readonly stages: StageDef[],
    private readonly inner?: StageExecutor,
  ) {}

  handles(stage: string): boolean {
    return Boolean(this.stages.find((s) => s.name === stage)?.shards) || Boolean(this.inner?.handles(stage));
  }

  async run(stage: StageDef, check: StageCheck, ctx: StageContext): Promise<StageResult | void> {
    if (!stage.shards) return this.inner!.run(stage, check, ctx);
    const key = check.key!;
    const named = await openNamedStore(this.remote.url, this.repo.root);
    const refs: ArtifactRef[] = [];
    const missing: number[] = [];
    for (let i = 0; i < this.count; i++) {
      const obj = await named.read(jobPaths.shard(key, i, this.count));
      if (obj) refs.push(artifactRefSchema.parse(JSON.parse(obj.text)));
      else missing.push(i + 1);
    }
    if (missing.length > 0) {
      throw new StageError(
        stage.name,
        `shard(s) ${missing.join(', ')} of ${this.count} of run ${key.slice(0, 12)} are not on ${this.remote.url}. Run lockstep repro ${stage.name} --shard i/${this.count} for each on the same commit first`,
      );
    }
    ctx.out.err(`${stage.name}: merging ${this.count} shard(s) from ${this.remote.url}`);
    try {
      for (const ref of refs) await checkoutArtifact(this.repo, ref, { remote: this.remote });
      return await stage.shards.merge(
        ctx,
        refs.map((r) => ctx.abs(r.path)),
      );
    } finally {
      for (const ref of refs) fs.rmSync(ctx.abs(ref.path), { recursive: true, force: true });
    }
  }
}
