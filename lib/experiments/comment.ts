/**
 * Experiments requested from a pull-request comment: who may request them (write access,
 * asked of the GitHub API, never inferred from the comment), the experiments a request expands
 * to (the grid of its -S lists, each named as `exp run` would name it), and the reply that tells
 * a refused commenter why. The comment's text is parsed by the CLI (lib/cli/exp-comment.ts).
 */
import type { GitHubClient, RepoSlug } from '../promotion/github.ts';
import type { Repo } from '../repo.ts';
import { expandGrid } from './grid.ts';
import { checkExperimentName } from './store.ts';
import { defaultExperimentName, experimentParams, headCommit } from './run.ts';

/** Repository permissions that may run experiments from a comment. */
const WRITE = new Set(['admin', 'maintain', 'write']);

export interface CommenterCheck {
  allowed: boolean;
  /** GitHub's answer (`admin`, `write`, `read`, `none`), or `none` for a non-collaborator. */
  permission: string;
}

/** Asks GitHub for `user`'s permission on the repository. */
export async function checkCommenter(
  client: GitHubClient,
  slug: RepoSlug,
  user: string,
): Promise<CommenterCheck> {
  try {
    const res = await client.request('GET /repos/{owner}/{repo}/collaborators/{username}/permission', {
      ...slug,
      username: user,
    });
    const permission = String(res.data?.role_name ?? res.data?.permission ?? 'none');
    return { allowed: WRITE.has(permission) || WRITE.has(String(res.data?.permission)), permission };
  } catch (err) {
    if ((err as { status?: number }).status === 404) return { allowed: false, permission: 'none' };
    throw err;
  }
}

export interface PlannedExperiment {
  /** Position in the grid: the matrix job that runs it asks for this index. */
  index: number;
  name: string;
  overrides: Record<string, unknown>;
}

/** The experiments `pairs` (the -S values) expand to, validated against the params schema now. */
export async function planExperiments(
  repo: Repo,
  pairs: string[],
  name?: string,
): Promise<PlannedExperiment[]> {
  const base = await headCommit(repo);
  const grid = expandGrid(pairs);
  const planned: PlannedExperiment[] = [];
  for (const [index, overrides] of grid.entries()) {
    await experimentParams(repo, overrides);
    planned.push({
      index,
      // Checked now, so a bad --name is refused with a reply instead of failing every matrix job.
      name: checkExperimentName(
        name ? (grid.length > 1 ? `${name}-${index + 1}` : name) : defaultExperimentName(base, overrides),
      ),
      overrides,
    });
  }
  return planned;
}

/** Posts `body` as a reply on pull request `issue`. */
export async function replyOnPullRequest(
  client: GitHubClient,
  slug: RepoSlug,
  issue: number,
  body: string,
): Promise<void> {
  await client.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', {
    ...slug,
    issue_number: issue,
    body,
  });
}
