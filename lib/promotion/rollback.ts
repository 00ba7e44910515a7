/**
 * Rolling an environment back: a new commit on top of the environment's branch that restores
 * the lockfile (and params) of the previous deployment, made in a temporary worktree so the
 * user's checkout is untouched. Locally it fast-forwards the environment branch; on GitHub it is
 * pushed to `rollback/<env>-<model>` and opened as a pull request (merging it deploys).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gitClient } from '../git-client.ts';
import { LockstepError, RefusedError } from '../errors.ts';
import type { Repo } from '../repo.ts';
import { environmentHistory } from './history.ts';
import { recordDeployment } from './records.ts';
import { LOCKFILE } from '../registry/registry.ts';
import { modelOf } from '../environment/model.ts';
import { readLockfileAt } from '../environment/revision.ts';
import { undoMirror, type BranchMirror } from './promote.ts';
import { advanceBranch } from './linear.ts';
import {
  addLabels,
  closePullRequest,
  listOpenPullRequests,
  upsertPullRequest,
  type GitHubClient,
  type RepoSlug,
} from './github.ts';

export interface RollbackPlan {
  env: string;
  branch: string;
  head: string;
  /** The deployment being rolled back. */
  from: { commit: string; model: string };
  /** The deployment restored. */
  to: { commit: string; model: string };
}

/** Finds the current and previous deployments of `env`; `to` may name a specific earlier commit. */
export async function planRollback(repo: Repo, env: string, to?: string): Promise<RollbackPlan> {
  const history = await environmentHistory(repo, env);
  const [current, ...older] = history.changes;
  if (!current) throw new RefusedError(`${env}: no model was ever deployed. Nothing to roll back.`);
  // By default the newest earlier model that no rollback has moved away from: rolling back twice
  // must not put back the model the first rollback took off (that needs an explicit --to).
  // Oldest first, so a model promoted again after it was rolled back from counts again.
  const rejected = new Set<string>();
  for (let i = history.changes.length - 1; i >= 0; i--) {
    const c = history.changes[i]!;
    const replaced = history.changes[i + 1];
    if (isRollbackCommit(c.subject)) {
      if (replaced) rejected.add(replaced.model);
    } else rejected.delete(c.model);
  }
  const target = to
    ? older.find((c) => c.commit.startsWith(to) || c.model.startsWith(to))
    : older.find((c) => c.model !== current.model && !rejected.has(c.model));
  if (!target) {
    const others = older.filter((c) => c.model !== current.model).length;
    throw new RefusedError(
      to
        ? `${env}: "${to}" is not an earlier deployment of ${env}. See lockstep history ${env}.`
        : others === 0
          ? `${env}: only one model was ever deployed. Nothing earlier to roll back to.`
          : `${env}: every earlier model was rolled back from. Pass --to <commit|model> to choose one (lockstep history ${env}).`,
    );
  }
  const head = (await gitClient(repo.root).raw(['rev-parse', history.branch])).trim();
  return {
    env,
    branch: history.branch,
    head,
    from: { commit: current.commit, model: current.model },
    to: { commit: target.commit, model: target.model },
  };
}

/**
 * Whether a commit subject is a rollback's: the commit lockstep writes ("Roll back <env> to
 * model ..."), its squash-merged pull request, or the merge of its `rollback/<env>-<model>` branch.
 */
export function isRollbackCommit(subject: string): boolean {
  return (
    /^Roll back \S+ to model [0-9a-f]{12}\b/.test(subject) ||
    /\brollback\/[\w.-]+-[0-9a-f]{12}\b/.test(subject)
  );
}

export function rollbackTitle(plan: RollbackPlan): string {
  return `Roll back ${plan.env} to model ${plan.to.model.slice(0, 12)}`;
}

/** The label every rollback pull request carries. */
export const ROLLBACK_LABEL = 'lockstep:rollback';

/**
 * The rollback pull request's body; `reason` says why (a canary's failed analysis) and
 * `evidence` lists what the analysis measured, one line each. The first line names the models
 * and the branch head it was made on, so a later run can tell the open one is still current.
 */
export function rollbackBody(plan: RollbackPlan, reason?: string, evidence: string[] = []): string {
  const shown = evidence.length ? `\nEvidence:\n${evidence.map((e) => `- ${e}`).join('\n')}\n` : '';
  return `<!-- lockstep-rollback env=${plan.env} from=${plan.from.model} to=${plan.to.model} head=${plan.head} -->\nRestores the lockfile of \`${plan.to.commit}\` (model \`${plan.to.model}\`) on **${plan.env}**, replacing \`${plan.from.model}\`.\n${reason ? `\nWhy: ${reason}\n` : ''}${shown}\nThe endpoint already serves the restored model; merging this pull request makes the branch pin what serves.\n`;
}

/** The first line of every revert pull request's body (see rollbackBody). */
const REVERT_MARKER = /<!-- lockstep-rollback env=(\S+) from=([0-9a-f]+) to=([0-9a-f]+) head=([0-9a-f]+) -->/;

/** An open revert pull request of an environment, as its body's first line describes it. */
export interface RevertPullRequest {
  number: number;
  url: string;
  /** Its branch (`rollback/<env>-<model12>`). */
  branch: string;
  /** The model it takes off the environment's branch. */
  from: string;
  /** The model it pins again. */
  to: string;
  /** The environment branch head it was made on. */
  head: string;
}

/**
 * The open revert pull requests of `env` into `base`, oldest first: a body that starts with the
 * marker for `env`, on a `rollback/<env>-` branch or labelled `lockstep:rollback`.
 */
export async function listOpenReverts(
  gh: { client: GitHubClient; slug: RepoSlug },
  env: string,
  base: string,
): Promise<RevertPullRequest[]> {
  const found: RevertPullRequest[] = [];
  for (const pr of await listOpenPullRequests(gh.client, gh.slug, base)) {
    const m = REVERT_MARKER.exec(pr.body);
    if (!m || m[1] !== env) continue;
    if (!pr.head.startsWith(`rollback/${env}-`) && !pr.labels.includes(ROLLBACK_LABEL)) continue;
    found.push({ number: pr.number, url: pr.url, branch: pr.head, from: m[2], to: m[3], head: m[4] });
  }
  return found.sort((a, b) => a.number - b.number);
}

/**
 * Pushes the rollback commit to `origin` and opens its pull request, or updates the one an
 * environment already has: there is exactly one open revert pull request per environment, even
 * when the model to restore changed since it was opened (its branch then gets the new commit,
 * its title and body the new plan). Any further open ones (left by an older version) are closed.
 */
export async function openRollbackPr(
  repo: Repo,
  plan: RollbackPlan,
  gh: { client: GitHubClient; slug: RepoSlug },
  reason?: string,
  evidence: string[] = [],
): Promise<{
  branch: string;
  commit: string;
  pullRequest: { number: number; url: string; created: boolean };
}> {
  const [open, ...extra] = await listOpenReverts(gh, plan.env, plan.branch);
  const { branch, commit } = await createRollbackCommit(repo, plan, reason, open?.branch);
  await gitClient(repo.root).raw(['push', '--force', 'origin', `${branch}:refs/heads/${branch}`]);
  const pullRequest = await upsertPullRequest(gh.client, gh.slug, {
    head: branch,
    base: plan.branch,
    title: rollbackTitle(plan),
    body: rollbackBody(plan, reason, evidence),
  });
  await addLabels(gh.client, gh.slug, pullRequest.number, [ROLLBACK_LABEL]);
  for (const pr of extra) await closePullRequest(gh.client, gh.slug, pr.number);
  return { branch, commit, pullRequest };
}

/**
 * Creates the rollback commit on branch `branch` (default: a new `rollback/<env>-<model12>`) from
 * the environment head. Returns the branch and commit.
 */
export async function createRollbackCommit(
  repo: Repo,
  plan: RollbackPlan,
  reason?: string,
  branch = `rollback/${plan.env}-${plan.to.model.slice(0, 12)}`,
): Promise<{ branch: string; commit: string }> {
  const git = gitClient(repo.root);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lockstep-rollback-'));
  try {
    await git.raw(['worktree', 'add', '--quiet', '-B', branch, dir, plan.head]);
    const wt = gitClient(dir);
    const files = [LOCKFILE, 'params.yaml'];
    for (const f of files) {
      const exists = await wt.raw(['ls-tree', '--name-only', plan.to.commit, f]).then((s) => s.trim() !== '');
      if (exists) await wt.raw(['checkout', plan.to.commit, '--', f]);
    }
    const status = await wt.status();
    if (status.isClean()) {
      throw new RefusedError(
        `${plan.env}: the lockfile already matches ${plan.to.commit.slice(0, 8)}. Nothing to roll back.`,
      );
    }
    await wt.raw([
      'commit',
      '-m',
      `${rollbackTitle(plan)}\n\nRestores ${LOCKFILE} and params.yaml from ${plan.to.commit} (model ${plan.to.model}),\nreplacing model ${plan.from.model} deployed by ${plan.from.commit}.${reason ? `\n\nWhy: ${reason}` : ''}`,
    ]);
    const commit = (await wt.raw(['rev-parse', 'HEAD'])).trim();
    return { branch, commit };
  } catch (err) {
    if (err instanceof LockstepError) throw err;
    throw new LockstepError(
      `rollback ${plan.env}: ${(err as Error).message.split('\n')[0]}. Resolve it by hand.`,
    );
  } finally {
    await git.raw(['worktree', 'remove', '--force', dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

export interface RollbackRecordOptions {
  /** What asked for it (default `rollback --local`). */
  source?: string;
  /** Why (default "from <model>"). */
  detail?: string;
  /** Moves with the branch (the Vertex AI aliases); put back when the branch move fails. */
  mirror?: BranchMirror;
}

/** Local rollback: create the commit and fast-forward the environment branch to it. */
export async function rollbackLocal(
  repo: Repo,
  plan: RollbackPlan,
  options: RollbackRecordOptions = {},
): Promise<{ commit: string }> {
  const { branch, commit } = await createRollbackCommit(repo, plan, options.detail);
  const lockfile = options.mirror ? await readLockfileAt(repo.root, commit) : undefined;
  const model = lockfile ? modelOf(lockfile) : undefined;
  const git = gitClient(repo.root);
  let mirrored: Awaited<ReturnType<BranchMirror['moveTo']>> | undefined;
  try {
    mirrored = model ? await options.mirror!.moveTo(model, plan.to.commit) : undefined;
    await advanceBranch(repo.root, plan.branch, plan.head, commit);
  } catch (err) {
    const stuck = await undoMirror(mirrored);
    // Nothing left behind: the rollback commit's branch goes with the failed move.
    await git.raw(['branch', '-D', branch]).catch(() => undefined);
    if (stuck)
      throw new LockstepError(`${(err as Error).message.split('\n')[0]}. ${stuck.trim()}`, { cause: err });
    // The branch moved between the plan and now (a commit, a merged pull request): the rollback
    // commit's parent is stale, so the branch is left as it is for a fresh plan.
    const now = (
      await git.raw(['rev-parse', '-q', '--verify', `refs/heads/${plan.branch}`]).catch(() => '')
    ).trim();
    if (now && now !== plan.head)
      throw new RefusedError(
        `${plan.env}: branch "${plan.branch}" moved to ${now.slice(0, 8)} since the rollback was planned on ${plan.head.slice(0, 8)}. Run the rollback again.`,
      );
    throw err;
  }
  await git.raw(['branch', '-D', branch]);
  await recordDeployment(repo, {
    env: plan.env,
    commit,
    model: plan.to.model,
    source: options.source ?? 'rollback --local',
    status: 'rolled_back',
    detail: options.detail ?? `from ${plan.from.model.slice(0, 12)}`,
  });
  return { commit };
}
