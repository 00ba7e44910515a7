/**
 * The GitHub client for CLI commands that talk to GitHub (promote, rollback, history): the
 * token from LOCKSTEP_GITHUB_TOKEN, GITHUB_TOKEN or GH_TOKEN (a workflow token, a GitHub App
 * installation token or a PAT), the API from GITHUB_API_URL, the repository from
 * GITHUB_REPOSITORY or the `origin` remote. This file is CLI glue, like an action entry.
 */
import { UsageError } from '../errors.ts';
import { gitRaw } from '../git.ts';
import { parseRepoSlug, type GitHubClient, type RepoSlug } from '../promotion/github.ts';

export interface GitHubContext {
  client: GitHubClient;
  slug: RepoSlug;
}

/** The token from the environment, or undefined. */
export function githubToken(): string | undefined {
  return process.env.LOCKSTEP_GITHUB_TOKEN || process.env.GITHUB_TOKEN || process.env.GH_TOKEN || undefined;
}

/** Builds a client from the environment; `required` makes a missing token a usage error. */
export async function githubFromEnv(root: string, required: boolean): Promise<GitHubContext | undefined> {
  const token = githubToken();
  if (!token) {
    if (!required) return undefined;
    throw new UsageError(
      'GITHUB_TOKEN: not set. Export a token with pull-requests: write (or GH_TOKEN / LOCKSTEP_GITHUB_TOKEN), or use --local.',
    );
  }
  let slug = process.env.GITHUB_REPOSITORY ? parseRepoSlug(process.env.GITHUB_REPOSITORY) : undefined;
  if (!slug) {
    const url = await gitRaw(root, ['remote', 'get-url', 'origin'])
      .then((s) => s.trim())
      .catch(() => '');
    slug = url ? parseRepoSlug(url) : undefined;
  }
  if (!slug) {
    throw new UsageError(
      'GITHUB_REPOSITORY: not set and no GitHub "origin" remote. Set GITHUB_REPOSITORY=owner/name.',
    );
  }
  const { getOctokit } = await import('@actions/github');
  const client = getOctokit(token, { baseUrl: process.env.GITHUB_API_URL || 'https://api.github.com' });
  return { client: client as unknown as GitHubClient, slug };
}
