/**
 * The rules a promotion must pass, each a small named function of what the plan gathered (the
 * branches, the source's lockfile and model, the gate verdict, the remote) that returns its
 * checks. The plan's checks are their union, in this order; a rule that does not apply (a clean
 * tree outside a local rehearsal, the divergence of a target that does not exist) returns none.
 */
import { gitClient } from '../git-client.ts';
import type { GateVerdict } from '../gate.ts';
import type { Threshold } from '../gate-rules.ts';
import { revParse } from '../environment/refs.ts';
import type { EnvironmentName } from '../environment/policy.ts';
import type { GateState } from '../registry/lockfile-cache.ts';
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import { Cache } from '../store/cache.ts';
import { remoteHolds } from '../store/packs.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';
import {
  checkStoredMatchesLockfile,
  countAhead,
  isAncestor,
  objectsOf,
  pinnedArtifacts,
  type Check,
} from './checks.ts';
import { foreignCommits, type PromotionMode } from './linear.ts';

/** What the rules read: gathered once by planPromotion, never changed by a rule. */
export interface PromotionContext {
  repo: Repo;
  target: EnvironmentName;
  from: EnvironmentName;
  /** The environment right before `target`: the only one it is promoted from. */
  previous: EnvironmentName;
  sourceBranch: string;
  targetBranch: string;
  sourceCommit: string;
  /** Undefined when the target branch does not exist yet. */
  targetCommit?: string;
  mode: PromotionMode;
  /** The source commit's lockfile and the model it pins. */
  lockfile: Lockfile;
  model: ArtifactRef;
  /** The gate verdict the source branch recorded in its lockfile. */
  recordedGate: GateState;
  /** The source model against the target's model, with the target's thresholds. */
  gate: GateVerdict;
  thresholds: Threshold[];
  /** Where deploys fetch artifacts from; undefined: none configured (the local cache counts). */
  remote?: Remote;
  /** Local rehearsal: the working tree must be clean too. */
  local: boolean;
}

/** One promotion rule: its checks for a context (none when it does not apply). */
export type PromotionRule = (ctx: PromotionContext) => Check[] | Promise<Check[]>;

function check(name: string, ok: boolean, detail: string): Check {
  return { name, ok, detail };
}

/** Environments are promoted one step at a time: dev → staging → prod, never skipping one. */
export function promotionOrderRule(ctx: PromotionContext): Check[] {
  const { from, previous, target } = ctx;
  return [
    check(
      'promotion order',
      from === previous,
      from === previous
        ? `${from} → ${target}`
        : `skipping an environment: ${target} is promoted only from ${previous}, not ${from}`,
    ),
  ];
}

/** A local rehearsal refuses a dirty working tree (it would not be what the branch holds). */
export async function cleanWorkingTreeRule(ctx: PromotionContext): Promise<Check[]> {
  if (!ctx.local) return [];
  const status = await gitClient(ctx.repo.root).status();
  return [
    check(
      'clean working tree',
      status.isClean(),
      status.isClean()
        ? 'no uncommitted changes'
        : `dirty working tree (${status.files.length} changed files); commit or stash them`,
    ),
  ];
}

/**
 * The target either fast-forwards to the source, or holds only rollback and promotion commits
 * the source's tree replaces; anything else there would be lost.
 */
export async function targetNotDivergedRule(ctx: PromotionContext): Promise<Check[]> {
  const { targetCommit, sourceCommit, targetBranch, sourceBranch } = ctx;
  if (!targetCommit) return [];
  if (ctx.mode !== 'take-upstream')
    return [check('target not diverged', true, `${targetBranch} fast-forwards to ${sourceBranch}`)];
  const root = ctx.repo.root;
  const foreign = await foreignCommits(root, targetCommit, sourceCommit);
  const ahead = await countAhead(root, targetCommit, sourceCommit);
  return [
    check(
      'target not diverged',
      foreign.length === 0,
      foreign.length === 0
        ? `${targetBranch} has ${ahead} rollback or promotion commit(s) not in ${sourceBranch}: ${targetBranch} takes ${sourceBranch}'s tree (no merge back needed)`
        : `${targetBranch} has ${foreign.length} commit(s) not in ${sourceBranch} that change more than the lockfile (${foreign
            .slice(0, 3)
            .map((f) => `${f.commit.slice(0, 8)} "${f.subject}"`)
            .join(', ')}); bring them into ${sourceBranch} first`,
    ),
  ];
}

/** Neither branch has diverged from its copy on origin (one check per diverged branch). */
export async function branchesInSyncRule(ctx: PromotionContext): Promise<Check[]> {
  const root = ctx.repo.root;
  const checks: Check[] = [];
  for (const branch of [ctx.sourceBranch, ctx.targetBranch]) {
    const local = await revParse(root, `refs/heads/${branch}`);
    const tracking = await revParse(root, `refs/remotes/origin/${branch}`);
    if (!local || !tracking || local === tracking) continue;
    const both = !(await isAncestor(root, local, tracking)) && !(await isAncestor(root, tracking, local));
    if (both)
      checks.push(
        check(
          'branch in sync with origin',
          false,
          `${branch} and origin/${branch} have diverged; pull or push first`,
        ),
      );
  }
  return checks;
}

/** The model did not fail the gate it ran on its own branch. */
export function recordedGateRule(ctx: PromotionContext): Check[] {
  const { recordedGate, sourceBranch } = ctx;
  return [
    check(
      'recorded gate',
      recordedGate !== 'failed',
      recordedGate === 'failed'
        ? `the model failed its gate on ${sourceBranch}`
        : `gate on ${sourceBranch}: ${recordedGate}`,
    ),
  ];
}

/** The model passes the target environment's gate against the model the target holds. */
export function targetGateRule(ctx: PromotionContext): Check[] {
  const { gate, target, thresholds } = ctx;
  return [
    check(
      `${target} gate`,
      gate.passed,
      gate.passed
        ? `passes ${target}'s ${thresholds.length} thresholds`
        : `fails ${target}'s gate: ${gate.reasons
            .filter((r) => !r.passed)
            .map((r) => r.detail)
            .join('; ')}`,
    ),
  ];
}

/**
 * Every pinned artifact is where deploys will fetch it (the remote, else the local cache) and
 * matches the lockfile; a failure to look is itself a failed check.
 */
export async function artifactsStoredRule(ctx: PromotionContext): Promise<Check[]> {
  const { repo, remote, model, sourceBranch } = ctx;
  const refs = pinnedArtifacts(ctx.lockfile);
  try {
    const checks: Check[] = [];
    const oids = await objectsOf(repo, refs, remote);
    if (remote) {
      // Loose or in a pack of its directory (packs.ts).
      const present = await remoteHolds(new Cache(repo), remote, oids, {
        manifests: refs.filter((r) => r.dir).map((r) => r.hash),
      });
      const missing = oids.filter((o) => !present.has(o));
      checks.push(
        check(
          'artifacts in the remote',
          missing.length === 0,
          missing.length === 0
            ? `${oids.length} objects present in ${remote.url}`
            : `${missing.length} of ${oids.length} objects missing from ${remote.url}; run lockstep push on ${sourceBranch}`,
        ),
      );
    } else {
      const cache = new Cache(repo);
      const missing: string[] = [];
      for (const o of oids) if (!(await cache.has(o))) missing.push(o);
      checks.push(
        check(
          'artifacts stored',
          missing.length === 0,
          missing.length === 0
            ? `${oids.length} objects in the local cache (no remote configured)`
            : `${missing.length} of ${oids.length} objects missing and no remote configured; configure a remote and run lockstep push`,
        ),
      );
    }
    checks.push(await checkStoredMatchesLockfile(repo, refs, model, remote));
    return checks;
  } catch (err) {
    return [check('artifacts stored', false, (err as Error).message.split('\n')[0])];
  }
}

/** Every rule, in the order their checks are reported. */
export const PROMOTION_RULES: readonly PromotionRule[] = [
  promotionOrderRule,
  cleanWorkingTreeRule,
  targetNotDivergedRule,
  branchesInSyncRule,
  recordedGateRule,
  targetGateRule,
  artifactsStoredRule,
];

/** The union of the rules' checks, in rule order. */
export async function runPromotionRules(
  ctx: PromotionContext,
  rules: readonly PromotionRule[] = PROMOTION_RULES,
): Promise<Check[]> {
  const checks: Check[] = [];
  for (const rule of rules) checks.push(...(await rule(ctx)));
  return checks;
}
