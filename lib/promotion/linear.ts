/**
 * The branch model: environment branches only ever take upstream's tree. Promoting into an
 * environment fast-forwards its branch to the source commit when the branch is an ancestor of
 * it; otherwise (the environment was rolled back since: its branch holds rollback commits) the
 * promotion is one commit whose tree is the source commit's tree exactly, with the branch head
 * and the source commit as parents. Nothing is ever merged back into upstream, and no promotion
 * can conflict, because no content merge happens: the commits an environment branch may hold
 * beyond its upstream are exactly the ones lockstep makes (rollbacks that change only the
 * lockfile and params.yaml, and promotion commits that took upstream's tree), and a promotion
 * replaces both.
 */
import { gitClient } from '../git-client.ts';
import { LOCKFILE } from '../registry/registry.ts';
import { isAncestor } from './checks.ts';

/** How a promotion moves the target branch. */
export type PromotionMode = 'create' | 'fast-forward' | 'take-upstream';

/** Files a rollback commit may change (anything else on an environment branch is a hand edit). */
export const ROLLBACK_FILES = [LOCKFILE, 'params.yaml'];

export interface ForeignCommit {
  commit: string;
  subject: string;
  files: string[];
}

/** `create`, `fast-forward` or `take-upstream` for moving `target` to `source`. */
export async function promotionMode(
  root: string,
  target: string | undefined,
  source: string,
): Promise<PromotionMode> {
  if (!target) return 'create';
  return (await isAncestor(root, target, source)) ? 'fast-forward' : 'take-upstream';
}

/**
 * Commits on `target` that are not in `source` and that lockstep did not make: neither a
 * rollback (a single-parent commit changing only ROLLBACK_FILES) nor a promotion or merged pull
 * request whose tree is its second parent's. A promotion would drop them, so it refuses instead.
 */
export async function foreignCommits(root: string, target: string, source: string): Promise<ForeignCommit[]> {
  const git = gitClient(root);
  const rows = (
    await git.raw(['rev-list', '--format=%H %T %P%x1f%s', '--no-commit-header', target, `^${source}`])
  )
    .split('\n')
    .filter(Boolean);
  const out: ForeignCommit[] = [];
  for (const row of rows) {
    const [head, subject] = row.split('\x1f');
    const [commit, tree, ...parents] = head.split(' ').filter(Boolean);
    if (parents.length >= 2) {
      const second = (await git.raw(['rev-parse', `${parents[1]}^{tree}`])).trim();
      if (second === tree) continue;
    }
    const files = (
      await git.raw(['diff-tree', '--no-commit-id', '--name-only', '-r', '-m', '--first-parent', commit])
    )
      .split('\n')
      .filter(Boolean);
    if (parents.length === 1 && files.every((f) => ROLLBACK_FILES.includes(f))) continue;
    out.push({ commit, subject: subject ?? '', files });
  }
  return out;
}

/**
 * The commit a take-upstream promotion adds on top of `target`: `source`'s tree, parents
 * `target` then `source` (so `git log --first-parent` on the branch lists one entry per
 * promotion or rollback, and the promoted commit stays reachable). Writes no ref.
 */
export async function takeUpstreamCommit(
  root: string,
  target: string,
  source: string,
  message: string,
): Promise<string> {
  const git = gitClient(root);
  const out = await git.raw(['commit-tree', `${source}^{tree}`, '-p', target, '-p', source, '-m', message]);
  return out.trim();
}

/**
 * Moves `branch` from `from` to `to` (a descendant): `merge --ff-only` when it is checked out
 * in `root` (so the working tree follows), else a compare-and-swap `update-ref`.
 */
export async function advanceBranch(
  root: string,
  branch: string,
  from: string | undefined,
  to: string,
): Promise<void> {
  const git = gitClient(root);
  const current = (await git.raw(['rev-parse', '--abbrev-ref', 'HEAD']).catch(() => '')).trim();
  if (current === branch) {
    await git.raw(['merge', '--ff-only', '--quiet', to]);
    return;
  }
  await git.raw(['update-ref', `refs/heads/${branch}`, to, ...(from ? [from] : ['0'.repeat(40)])]);
}
