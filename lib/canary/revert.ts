/**
 * After the endpoint went back to the stable model (an automatic canary rollback or
 * `lockstep rollback`), git catches up so the environment branch pins what serves: locally a
 * rollback commit fast-forwards the branch; with GitHub, a revert pull request is opened (the
 * endpoint already serves the stable model, so merging it changes no traffic).
 */
import type { Repo } from '../repo.ts';
import type { GitHubClient, RepoSlug } from '../promotion/github.ts';
import type { BranchMirror } from '../promotion/promote.ts';
import {
  listOpenReverts,
  openRollbackPr,
  planRollback,
  rollbackLocal,
  type RollbackPlan,
} from '../promotion/rollback.ts';

export type GitRevert =
  | { kind: 'none'; reason: string }
  | { kind: 'local'; plan: RollbackPlan; commit: string }
  | {
      kind: 'pull-request';
      plan: RollbackPlan;
      branch: string;
      commit: string;
      pullRequest: { number: number; url: string; created: boolean };
    }
  | { kind: 'pending'; pullRequest: OpenRevert & { created: false } };

/** An open revert pull request of an environment (found by its body's first line). */
export interface OpenRevert {
  number: number;
  url: string;
  /** The model it takes off the branch. */
  from: string;
  /** The model it pins again. */
  to: string;
  /** The branch head it was made on. */
  head: string;
}

/** The open revert pull request into `branch` that takes `failed` off it, if any. */
export async function findOpenRevert(
  gh: { client: GitHubClient; slug: RepoSlug },
  env: string,
  branch: string,
  failed: string,
): Promise<OpenRevert | undefined> {
  const pr = (await listOpenReverts(gh, env, branch)).find((p) => p.from === failed);
  return pr && { number: pr.number, url: pr.url, from: pr.from, to: pr.to, head: pr.head };
}

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
  /** What the analysis measured, one line each, for the pull request body. */
  evidence?: string[];
}

/** Makes `env`'s branch pin `stable` again when it still pins `failed`. */
export async function revertBranch(repo: Repo, env: string, o: RevertOptions): Promise<GitRevert> {
  const plan = await planRollback(repo, env, o.stable);
  if (plan.from.model !== o.failed)
    return {
      kind: 'none',
      reason: `${env}'s branch pins ${plan.from.model.slice(0, 12)}, not ${o.failed.slice(0, 12)}: nothing to revert`,
    };
  if (o.github) {
    // One revert pull request per environment: the open one is left as it is when it still says
    // what to do (same head, same models), and updated otherwise (openRollbackPr), never doubled.
    const open = await findOpenRevert(o.github, env, plan.branch, o.failed);
    if (open && open.head === plan.head && open.to === o.stable)
      return { kind: 'pending', pullRequest: { ...open, created: false } };
    return {
      kind: 'pull-request',
      plan,
      ...(await openRollbackPr(repo, plan, o.github, o.reason, o.evidence ?? [])),
    };
  }
  const { commit } = await rollbackLocal(repo, plan, {
    source: o.source ?? 'canary',
    detail: o.reason,
    mirror: o.mirror,
  });
  return { kind: 'local', plan, commit };
}
