/**
 * After the endpoint went back to the stable model (an automatic canary rollback or
 * `lockstep rollback`), git catches up so the environment branch pins what serves: locally a
 * rollback commit fast-forwards the branch; with GitHub, a revert pull request is opened (the
 * endpoint already serves the stable model, so merging it changes no traffic).
 */
import type { Repo } from '../repo.ts';
import type { GitHubClient, RepoSlug } from '../promotion/github.ts';
import type { BranchMirror } from '../promotion/promote.ts';
import { openRollbackPr, planRollback, rollbackLocal, type RollbackPlan } from '../promotion/rollback.ts';

export type GitRevert =
  | { kind: 'none'; reason: string }
  | { kind: 'local'; plan: RollbackPlan; commit: string }
  | {
      kind: 'pull-request';
      plan: RollbackPlan;
      branch: string;
      commit: string;
      pullRequest: { number: number; url: string; created: boolean };
    };

export interface RevertOptions {
  /** The model that no longer serves (the branch pins it now). */
  failed: string;
  /** The model serving instead, which the branch must pin again. */
  stable: string;
  /** Why, for the commit record and the pull request. */
  reason: string;
  /** Open a pull request instead of moving the local branch. */
  github?: { client: GitHubClient; slug: RepoSlug };
  /** What asked for it (deployment record source). */
  source?: string;
  /** Moves with the branch (the Vertex AI aliases). */
  mirror?: BranchMirror;
}

/** Makes `env`'s branch pin `stable` again when it still pins `failed`. */
export async function revertBranch(repo: Repo, env: string, o: RevertOptions): Promise<GitRevert> {
  const plan = await planRollback(repo, env, o.stable);
  if (plan.from.model !== o.failed)
    return {
      kind: 'none',
      reason: `${env}'s branch pins ${plan.from.model.slice(0, 12)}, not ${o.failed.slice(0, 12)}: nothing to revert`,
    };
  if (o.github)
    return { kind: 'pull-request', plan, ...(await openRollbackPr(repo, plan, o.github, o.reason)) };
  const { commit } = await rollbackLocal(repo, plan, {
    source: o.source ?? 'canary',
    detail: o.reason,
    mirror: o.mirror,
  });
  return { kind: 'local', plan, commit };
}
