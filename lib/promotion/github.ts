/**
 * The GitHub side of promotion: open (or update) the promotion pull request, open rollback
 * pull requests, and read deployments. Takes any Octokit-compatible client, so only the entry
 * points decide how it is authenticated (GITHUB_TOKEN, a GitHub App token or a PAT).
 */
import { LockstepError } from '../errors.ts';

/** The part of Octokit's REST client used here. */
export interface GitHubClient {
  request(route: string, params?: Record<string, unknown>): Promise<{ status: number; data: any }>;
}

export interface RepoSlug {
  owner: string;
  repo: string;
}

/** Parses `owner/name` (GITHUB_REPOSITORY) or a GitHub remote URL. */
export function parseRepoSlug(value: string): RepoSlug | undefined {
  const m =
    /^([\w.-]+)\/([\w.-]+?)(?:\.git)?$/.exec(value) ?? /[/:]([\w.-]+)\/([\w.-]+?)(?:\.git)?\/?$/.exec(value);
  return m ? { owner: m[1], repo: m[2] } : undefined;
}

export interface PullRequestSpec {
  head: string;
  base: string;
  title: string;
  body: string;
}

function explain(err: unknown, what: string): never {
  const status = (err as { status?: number }).status;
  if (status === 403 || status === 401) {
    throw new LockstepError(
      `${what}: GitHub answered ${status} (the token cannot write pull requests). Use a token with pull-requests: write, a GitHub App token, or allow Actions to create pull requests in the repository settings.`,
    );
  }
  throw new LockstepError(`${what}: GitHub request failed (${(err as Error).message.split('\n')[0]}).`);
}

/**
 * Opens a pull request from `head` into `base`, or updates the body of the open one
 * (promotion is idempotent: re-running it never opens a second PR).
 */
export async function upsertPullRequest(
  client: GitHubClient,
  slug: RepoSlug,
  spec: PullRequestSpec,
): Promise<{ number: number; url: string; created: boolean }> {
  try {
    const open = await client.request('GET /repos/{owner}/{repo}/pulls', {
      ...slug,
      state: 'open',
      head: `${slug.owner}:${spec.head}`,
      base: spec.base,
    });
    const existing = (open.data as any[]).find((p) => p.head?.ref === spec.head && p.base?.ref === spec.base);
    if (existing) {
      await client.request('PATCH /repos/{owner}/{repo}/pulls/{pull_number}', {
        ...slug,
        pull_number: existing.number,
        title: spec.title,
        body: spec.body,
      });
      return { number: existing.number, url: existing.html_url, created: false };
    }
    const created = await client.request('POST /repos/{owner}/{repo}/pulls', { ...slug, ...spec });
    return { number: created.data.number, url: created.data.html_url, created: true };
  } catch (err) {
    if (err instanceof LockstepError) throw err;
    explain(err, `pull request ${spec.head} → ${spec.base}`);
  }
}

/** Closes a pull request without merging it. */
export async function closePullRequest(client: GitHubClient, slug: RepoSlug, number: number): Promise<void> {
  try {
    await client.request('PATCH /repos/{owner}/{repo}/pulls/{pull_number}', {
      ...slug,
      pull_number: number,
      state: 'closed',
    });
  } catch (err) {
    explain(err, `pull request #${number}`);
  }
}

/** Adds labels to an issue or pull request (GitHub creates a label the repository lacks). */
export async function addLabels(
  client: GitHubClient,
  slug: RepoSlug,
  number: number,
  labels: string[],
): Promise<void> {
  try {
    await client.request('POST /repos/{owner}/{repo}/issues/{issue_number}/labels', {
      ...slug,
      issue_number: number,
      labels,
    });
  } catch (err) {
    explain(err, `labels of #${number}`);
  }
}

/** Open pull requests into `base`, with their head branch, body and labels. */
export async function listOpenPullRequests(
  client: GitHubClient,
  slug: RepoSlug,
  base: string,
): Promise<{ number: number; url: string; head: string; body: string; labels: string[] }[]> {
  try {
    const res = await client.request('GET /repos/{owner}/{repo}/pulls', {
      ...slug,
      state: 'open',
      base,
      per_page: 100,
    });
    return (res.data as any[]).map((p) => ({
      number: p.number,
      url: p.html_url,
      head: p.head?.ref ?? '',
      body: p.body ?? '',
      labels: ((p.labels ?? []) as { name: string }[]).map((l) => l.name),
    }));
  } catch (err) {
    explain(err, `pull requests into ${base}`);
  }
}

export interface GitHubDeployment {
  id: number;
  sha: string;
  ref: string;
  environment: string;
  created_at: string;
  state: string;
  description?: string;
  /** Every status, newest first (each canary step, hold, completion or rollback posts one). */
  statuses: { state: string; description?: string; created_at?: string }[];
}

/** Deployments of `environment`, newest first, each with its latest status. */
export async function listDeployments(
  client: GitHubClient,
  slug: RepoSlug,
  environment: string,
): Promise<GitHubDeployment[]> {
  try {
    const res = await client.request('GET /repos/{owner}/{repo}/deployments', {
      ...slug,
      environment,
      per_page: 100,
    });
    const out: GitHubDeployment[] = [];
    for (const d of res.data as any[]) {
      const statuses = await client.request(
        'GET /repos/{owner}/{repo}/deployments/{deployment_id}/statuses',
        {
          ...slug,
          deployment_id: d.id,
          per_page: 100,
        },
      );
      const all = statuses.data as any[];
      const latest = all[0];
      out.push({
        id: d.id,
        sha: d.sha,
        ref: d.ref,
        environment: d.environment,
        created_at: d.created_at,
        state: latest?.state ?? 'pending',
        description: latest?.description ?? d.description ?? undefined,
        statuses: all.map((x) => ({
          state: x.state,
          ...(x.description ? { description: x.description } : {}),
          ...(x.created_at ? { created_at: x.created_at } : {}),
        })),
      });
    }
    return out;
  } catch (err) {
    if (err instanceof LockstepError) throw err;
    explain(err, `deployments of ${environment}`);
  }
}

/**
 * Records a deployment with GitHub's Deployments API and sets its status
 * (`in_progress`, `success`, `failure`, `inactive`). Returns the deployment id.
 */
export async function createDeployment(
  client: GitHubClient,
  slug: RepoSlug,
  spec: {
    ref: string;
    sha?: string;
    environment: string;
    description: string;
    payload?: Record<string, unknown>;
  },
): Promise<number> {
  const res = await client.request('POST /repos/{owner}/{repo}/deployments', {
    ...slug,
    ref: spec.sha ?? spec.ref,
    environment: spec.environment,
    description: spec.description,
    payload: spec.payload ?? {},
    auto_merge: false,
    required_contexts: [],
    production_environment: spec.environment === 'prod',
  });
  return res.data.id as number;
}

export async function setDeploymentStatus(
  client: GitHubClient,
  slug: RepoSlug,
  id: number,
  state: 'in_progress' | 'success' | 'failure' | 'inactive' | 'error',
  description: string,
): Promise<void> {
  await client.request('POST /repos/{owner}/{repo}/deployments/{deployment_id}/statuses', {
    ...slug,
    deployment_id: id,
    state,
    description: description.slice(0, 140),
  });
}
