/**
 * The gate's baseline: the evaluate metrics the environment's branch pins, as a declared stage
 * input. Light on purpose (git and the lockfile only): the stage declaration imports it, so
 * planning needs no stage body.
 */
import { createHash } from 'node:crypto';
import type { InputRef, StageInput } from '../../lib/types.ts';
import type { Baseline } from '../../lib/gate.ts';
import { canonicalJson } from '../../lib/pipeline/fingerprint.ts';
import { environmentHead, readLockfileAt } from '../../lib/environment/revision.ts';
import { Cache } from '../../lib/store/cache.ts';
import { readManifest } from '../../lib/store/artifacts.ts';
import { repoAt } from '../../lib/repo.ts';
import { PATHS } from '../../lib/paths.ts';
import { parsePredictions, type PredictionsFile } from '../../lib/slices/predictions.ts';
import { slicesSource } from '../../lib/pipeline/recorded-slices.ts';

/**
 * The deployed model's metrics: the `evaluate` stage metrics of the lockfile at the head of the
 * environment's branch (local branch first, then `origin/<branch>`, as CI checkouts have it).
 * Null when the branch, the lockfile or the metrics do not exist.
 */
export async function resolveBaseline(root: string, env: string): Promise<Baseline | null> {
  const { commit } = await environmentHead(root, env);
  return commit ? baselineAt(root, env, commit) : null;
}

/**
 * The evaluate metrics in the lockfile at `commit`, as environment `env`'s baseline (or null).
 * The lockfile's metrics only, and where its slices are (`slicesOut`): the gate's body reads
 * those (withBaselineSlices) when a slice threshold needs them.
 */
export async function baselineAt(root: string, env: string, commit: string): Promise<Baseline | null> {
  const lockfile = await readLockfileAt(root, commit);
  const metrics = lockfile?.stages.evaluate?.metrics;
  if (!lockfile || !metrics || Object.keys(metrics).length === 0) return null;
  const slices = slicesSource(lockfile);
  return { env, commit, metrics, ...(slices ? { slicesOut: slices.out } : {}) };
}

/**
 * The object id of the baseline's per-clip predictions (`out/eval/predictions.json` inside the
 * evaluate out the lockfile at `commit` pins), when that object is in the local cache. Only the
 * local cache: the gate never downloads to decide between a paired and an unpaired comparison.
 */
export async function baselinePredictionsOid(root: string, commit: string): Promise<string | undefined> {
  const lockfile = await readLockfileAt(root, commit);
  const out = lockfile?.stages.evaluate?.outs.find((o) => o.path === PATHS.eval);
  if (!out?.dir) return undefined;
  const cache = new Cache(repoAt(root));
  if (!cache.hasSync(out.hash)) return undefined;
  const manifest = await readManifest(cache, out);
  const entry = manifest.entries.find((e) => e.path === 'predictions.json');
  return entry && cache.hasSync(entry.sha256) ? entry.sha256 : undefined;
}

/** The baseline's predictions (see {@link baselinePredictionsOid}), or undefined. */
export async function baselinePredictions(
  root: string,
  commit: string,
): Promise<PredictionsFile | undefined> {
  const oid = await baselinePredictionsOid(root, commit);
  if (!oid) return undefined;
  const bytes = await new Cache(repoAt(root)).readBytes(oid, { path: `${PATHS.eval}/predictions.json` });
  return parsePredictions(bytes.toString('utf8'), `${commit.slice(0, 8)}:${PATHS.eval}/predictions.json`);
}

/**
 * The identity of a baseline as a stage input: its metrics' content and, when the local cache
 * holds them, its predictions' (they decide whether change thresholds pair clip by clip); where
 * it was read, as label.
 */
async function baselineRef(root: string, env: string, baseline: Baseline | null): Promise<InputRef> {
  const predictions = baseline?.commit
    ? ((await baselinePredictionsOid(root, baseline.commit)) ?? null)
    : null;
  const hash = createHash('sha256')
    .update(
      canonicalJson({
        env,
        metrics: baseline?.metrics ?? null,
        ...(predictions ? { predictions } : {}),
        // The slices live in the evaluate out (not in the lockfile's metrics): its hash names them.
        ...(baseline?.slicesOut ? { slices: baseline.slicesOut } : {}),
      }),
    )
    .digest('hex');
  if (!baseline?.commit) return { hash, label: `${env} (none)` };
  return { hash, label: `${env}@${baseline.commit.slice(0, 8)}`, rev: baseline.commit };
}

/**
 * The gate's baseline as a declared stage input: the environment branch head's evaluate metrics,
 * or, pinned to a recorded value, the metrics at the recorded commit.
 */
export function baselineInput(env: string): StageInput {
  return {
    name: 'baseline',
    async resolve(root, pinned) {
      if (pinned) return baselineRef(root, env, pinned.rev ? await baselineAt(root, env, pinned.rev) : null);
      return baselineRef(root, env, await resolveBaseline(root, env));
    },
  };
}
