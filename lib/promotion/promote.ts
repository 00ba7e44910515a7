/**
 * Promotion: move the model pinned on one environment's branch into the next environment's
 * branch, dev → staging → prod, only when every check passes. Plan first (`planPromotion`,
 * which never changes anything), then act: `promoteLocal` moves the branch in the local
 * repository (a full rehearsal on one machine); on GitHub the CLI opens or updates the pull
 * request. The branch model (fast-forward, else take upstream's tree) is lib/promotion/linear.ts;
 * the checks a promotion must pass are the named rules of lib/promotion/rules.ts.
 */
import { gitClient } from '../git-client.ts';
import { paramsAtRev } from '../params.ts';
import { evaluateGate, type GateVerdict } from '../gate.ts';
import type { Threshold } from '../gate-rules.ts';
import { LockstepError, RefusedError, UsageError } from '../errors.ts';
import type { Repo } from '../repo.ts';
import { defaultRemote } from '../store/remote-config.ts';
import { openRemote } from '../store/open-remote.ts';
import type { Remote } from '../store/remote.ts';
import { lineageOf, type Lineage } from '../registry/lineage.ts';
import { environmentBranch } from '../environment/refs.ts';
import { LOCKFILE, metricsOf } from '../registry/registry.ts';
import { modelOf } from '../environment/model.ts';
import { branchHead, readLockfileAt } from '../environment/revision.ts';
import { writeGtoTags, type GtoTags } from '../registry/gto.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';
import type { Check } from './checks.ts';
import { runPromotionRules } from './rules.ts';
import {
  ENVIRONMENTS,
  environmentThresholds,
  previousEnvironment,
  readPolicy,
  type EnvironmentName,
  type Policy,
} from '../environment/policy.ts';
import { recordDeployment } from './records.ts';
import { advanceBranch, promotionMode, takeUpstreamCommit, type PromotionMode } from './linear.ts';

export interface PromotionPlan {
  env: EnvironmentName;
  from: EnvironmentName;
  sourceBranch: string;
  targetBranch: string;
  sourceCommit: string;
  /** Undefined when the target branch does not exist yet (first promotion). */
  targetCommit?: string;
  /** How the target branch moves: created, fast-forwarded, or given the source tree on top. */
  mode: PromotionMode;
  model: ArtifactRef;
  metrics: Record<string, number>;
  /** The model now in the target environment. */
  baseline?: { commit: string; model: string; metrics: Record<string, number> };
  gate: GateVerdict;
  lineage: Lineage;
  checks: Check[];
  /** True when every check passed. */
  ok: boolean;
  /**
   * True when the target already holds the source's tree (the same commit, or a promotion that
   * took it): promoting again would only add tags, records and an empty commit, so it does nothing.
   */
  upToDate: boolean;
  remote?: string;
}

export interface PlanOptions {
  /** Source environment; must be the one right before `env`. */
  from?: string;
  /** Remote to check artifacts against (default: the target policy's, else the repository's). */
  remote?: Remote;
  /** Local rehearsal: also require a clean working tree. */
  local?: boolean;
}

/** Gate thresholds: the target environment's policy, else params.yaml's at the source commit. */
async function thresholdsFor(repo: Repo, policy: Policy, sourceCommit: string): Promise<Threshold[]> {
  const params = await paramsAtRev(repo, sourceCommit);
  return environmentThresholds(policy.branch, policy, params.gate.thresholds).thresholds;
}

async function resolveRemote(repo: Repo, policy: Policy, given?: Remote): Promise<Remote | undefined> {
  if (given) return given;
  if (policy.remote) return openRemote(policy.remote);
  return defaultRemote(repo);
}

/**
 * Plans promoting into `env` and runs every check. Never changes the repository.
 * @throws UsageError for an unknown environment; otherwise refusals are in `checks`.
 */
export async function planPromotion(
  repo: Repo,
  env: string,
  options: PlanOptions = {},
): Promise<PromotionPlan> {
  if (!(ENVIRONMENTS as readonly string[]).includes(env)) {
    throw new UsageError(`environment "${env}": unknown. Use one of ${ENVIRONMENTS.join(', ')}.`);
  }
  const target = env as EnvironmentName;
  const previous = previousEnvironment(target);
  if (!previous) {
    throw new RefusedError(
      `${target}: the first environment is not promoted into; merge a pull request into its branch instead.`,
    );
  }
  const from = (options.from ?? previous) as EnvironmentName;
  const root = repo.root;
  const sourceBranch = await environmentBranch(root, from);
  const targetBranch = await environmentBranch(root, target);
  const policy = await readPolicy(root, target);
  const sourceCommit = await branchHead(root, sourceBranch);
  if (!sourceCommit) {
    throw new RefusedError(
      `${from}: branch "${sourceBranch}" does not exist. Create it and merge a model into it first.`,
    );
  }
  const lockfile = await readLockfileAt(root, sourceCommit);
  const model = lockfile ? modelOf(lockfile) : undefined;
  if (!lockfile || !model) {
    throw new RefusedError(
      `${from}: ${LOCKFILE} on "${sourceBranch}" pins no model. Run lockstep repro on ${sourceBranch} and commit the lockfile.`,
    );
  }
  const { metrics, gate: recordedGate } = metricsOf(lockfile);
  const targetCommit = await branchHead(root, targetBranch);
  const mode = await promotionMode(root, targetCommit, sourceCommit);

  // The gate: the source model against the model in the target environment, with its thresholds.
  let baseline: PromotionPlan['baseline'];
  const targetLock = targetCommit ? await readLockfileAt(root, targetCommit) : undefined;
  if (targetCommit) {
    const targetModel = targetLock ? modelOf(targetLock) : undefined;
    if (targetLock && targetModel) {
      baseline = { commit: targetCommit, model: targetModel.hash, metrics: metricsOf(targetLock).metrics };
    }
  }
  const thresholds = await thresholdsFor(repo, policy, sourceCommit);
  const remote = await resolveRemote(repo, policy, options.remote);
  // Slice rules judge the slices, which the lockfile leaves in the evaluate out.
  // The baseline's only for a per-slice change (a `tolerance`): a `min` over slices reads none.
  const sliced = thresholds.some((t) => t.slice !== undefined);
  const slicedChange = thresholds.some((t) => t.slice !== undefined && t.tolerance !== undefined);
  const withSlices = async (lf: Lockfile, m: Record<string, number>, at: string, needed = sliced) =>
    needed ? { ...m, ...(await slicesOf(repo, lf, at, remote)) } : m;
  const gate = evaluateGate({
    metrics: await withSlices(lockfile, metrics, `${from}@${sourceCommit.slice(0, 8)}`),
    thresholds,
    baseline:
      baseline && targetLock
        ? {
            metrics: await withSlices(
              targetLock,
              baseline.metrics,
              `${target}@${baseline.commit.slice(0, 8)}`,
              slicedChange,
            ),
          }
        : undefined,
  });
  const checks = await runPromotionRules({
    repo,
    target,
    from,
    previous,
    sourceBranch,
    targetBranch,
    sourceCommit,
    targetCommit,
    mode,
    lockfile,
    model,
    recordedGate,
    gate,
    thresholds,
    remote,
    local: options.local ?? false,
  });

  return {
    env: target,
    from,
    sourceBranch,
    targetBranch,
    sourceCommit,
    targetCommit,
    mode,
    model,
    metrics,
    baseline,
    gate,
    lineage: lineageOf(sourceCommit, lockfile),
    checks,
    ok: checks.every((c) => c.ok),
    upToDate: targetCommit !== undefined && (await sameTree(root, targetCommit, sourceCommit)),
    remote: remote?.url,
  };
}

/**
 * The evaluate slices `lockfile` records, flat (`slices.speaker.S03.n`, ...), from its evaluate
 * out (cache, else `remote`) or, for a lockfile from before they left it, from its metrics.
 * @throws RefusedError when neither the cache nor the remote has them.
 */
async function slicesOf(
  repo: Repo,
  lockfile: Lockfile,
  at: string,
  remote: Remote | undefined,
): Promise<Record<string, number>> {
  const { recordedEvalMetrics } = await import('../pipeline/recorded-slices.ts');
  const { flattenMetrics } = await import('../pipeline/metrics.ts');
  const recorded = await recordedEvalMetrics(repo, lockfile, { remote, label: at });
  if (recorded.missing) {
    throw new RefusedError(
      `${recorded.missing} A slice threshold needs the evaluate slices of ${at}: if they are in neither the cache nor the remote, push them (lockstep push) from the machine that ran the pipeline.`,
    );
  }
  return flattenMetrics({ slices: recorded.slices });
}

/** True when commits `a` and `b` have the same tree. */
async function sameTree(root: string, a: string, b: string): Promise<boolean> {
  if (a === b) return true;
  const trees = await gitClient(root).raw(['rev-parse', `${a}^{tree}`, `${b}^{tree}`]);
  const [ta, tb] = trees.trim().split('\n');
  return ta !== undefined && ta === tb;
}

/** Throws a RefusedError listing every failed check. */
export function assertPromotable(plan: PromotionPlan): void {
  const failed = plan.checks.filter((c) => !c.ok);
  if (failed.length === 0) return;
  throw new RefusedError(
    `promote ${plan.env}: refused: ${failed.map((c) => `${c.name}: ${c.detail}`).join('; ')}.`,
  );
}

export interface LocalPromotion {
  plan: PromotionPlan;
  /** The new head of the target branch (the source commit after a fast-forward). */
  mergeCommit: string;
  tags: GtoTags;
}

/**
 * The commit the target branch moves to: the source commit (create, fast-forward), or the
 * take-upstream commit on top of the target head. Writes no ref.
 */
export async function promotionCommit(repo: Repo, plan: PromotionPlan): Promise<string> {
  if (plan.mode !== 'take-upstream') return plan.sourceCommit;
  return takeUpstreamCommit(repo.root, plan.targetCommit!, plan.sourceCommit, promotionTitle(plan));
}

/**
 * Something outside git that names each environment's model and must move with its branch (the
 * Vertex AI Model Registry's environment aliases). `undo` puts it back when the branch move fails.
 */
export interface BranchMirror {
  moveTo(model: ArtifactRef, commit: string): Promise<{ undo(): Promise<void> }>;
}

/**
 * Puts a mirror back after the branch move failed. Returns '' when it did (or there was none),
 * else a sentence for the error: the mirror is now ahead of git and says how to repair it.
 */
export async function undoMirror(move: { undo(): Promise<void> } | undefined): Promise<string> {
  if (!move) return '';
  try {
    await move.undo();
    return '';
  } catch (err) {
    return `The Vertex AI aliases could not be put back (${(err as Error).message.split('\n')[0]}): run lockstep registry check --vertex --fix. `;
  }
}

/**
 * Moves the target branch in the local repository as the merged pull request would (see
 * lib/promotion/linear.ts), then writes GTO tags and a deployment record. Nothing is merged, so
 * nothing can conflict; a checked-out target branch is fast-forwarded with its working tree.
 */
export async function promoteLocal(
  repo: Repo,
  plan: PromotionPlan,
  options: { mirror?: BranchMirror } = {},
): Promise<LocalPromotion> {
  assertPromotable(plan);
  const root = repo.root;
  let mergeCommit: string;
  // The mirror moves first: if it refuses (a 403, a missing model), the branch has not moved.
  const mirrored = await options.mirror?.moveTo(plan.model, plan.sourceCommit);
  try {
    mergeCommit = await promotionCommit(repo, plan);
    if (plan.mode === 'create') await gitClient(root).raw(['branch', plan.targetBranch, mergeCommit]);
    else await advanceBranch(root, plan.targetBranch, plan.targetCommit, mergeCommit);
  } catch (err) {
    const stuck = await undoMirror(mirrored);
    throw new LockstepError(
      `promote ${plan.env}: moving ${plan.targetBranch} to ${plan.sourceBranch} failed (${(err as Error).message.split('\n')[0]}). ${stuck}Check the branch (git log ${plan.targetBranch}) and run again.`,
    );
  }
  const tags = await writeGtoTags(root, plan.sourceCommit, plan.env);
  await recordDeployment(repo, {
    env: plan.env,
    commit: mergeCommit,
    model: plan.model.hash,
    version: tags.version,
    source: 'promote --local',
    status: 'promoted',
    detail: `${plan.mode} ${plan.targetBranch} to ${plan.sourceBranch} ${plan.sourceCommit.slice(0, 8)}`,
  });
  return { plan, mergeCommit, tags };
}

/** The pull request (and merge commit) title. */
export function promotionTitle(plan: PromotionPlan): string {
  return `Promote model ${plan.model.hash.slice(0, 12)} from ${plan.from} to ${plan.env}`;
}

export { ENVIRONMENTS };
