/**
 * Monitoring on GitHub: ONE issue per environment, found by a hidden marker and updated in place
 * (reopened if it was closed), and a `workflow_dispatch` of the retraining workflow.
 */
import type { GitHubClient, RepoSlug } from '../promotion/github.ts';
import { LockstepError } from '../errors.ts';

export function issueMarker(env: string): string {
  return `<!-- lockstep-monitor:${env} -->`;
}

/**
 * Creates or updates the monitoring issue of `env`. Searches open and closed issues with the
 * `lockstep-monitor` label for the marker; reopens a closed one on a new alert.
 */
export async function upsertMonitorIssue(
  client: GitHubClient,
  slug: RepoSlug,
  env: string,
  title: string,
  markdown: string,
): Promise<{ number: number; created: boolean }> {
  const marker = issueMarker(env);
  const body = `${marker}\n${markdown}`;
  try {
    for (let page = 1; page <= 10; page++) {
      const res = await client.request('GET /repos/{owner}/{repo}/issues', {
        ...slug,
        state: 'all',
        labels: 'lockstep-monitor',
        per_page: 100,
        page,
      });
      const list = res.data as {
        number: number;
        body?: string | null;
        state: string;
        pull_request?: unknown;
      }[];
      const found = list.find((i) => !i.pull_request && (i.body ?? '').includes(marker));
      if (found) {
        await client.request('PATCH /repos/{owner}/{repo}/issues/{issue_number}', {
          ...slug,
          issue_number: found.number,
          title,
          body,
          state: 'open',
        });
        return { number: found.number, created: false };
      }
      if (list.length < 100) break;
    }
    const created = await client.request('POST /repos/{owner}/{repo}/issues', {
      ...slug,
      title,
      body,
      labels: ['lockstep-monitor', `env:${env}`],
    });
    return { number: created.data.number as number, created: true };
  } catch (err) {
    const status = (err as { status?: number }).status;
    throw new LockstepError(
      `monitor ${env}: GitHub issue update failed (${status ?? (err as Error).message.split('\n')[0]}). Give the workflow issues: write.`,
    );
  }
}

/** Dispatches the retraining workflow with a reason. */
export async function dispatchRetrain(
  client: GitHubClient,
  slug: RepoSlug,
  options: { workflow?: string; ref: string; reason: string },
): Promise<void> {
  try {
    await client.request('POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches', {
      ...slug,
      workflow_id: options.workflow ?? 'retrain.yml',
      ref: options.ref,
      inputs: { reason: options.reason.slice(0, 1000) },
    });
  } catch (err) {
    const status = (err as { status?: number }).status;
    throw new LockstepError(
      `monitor: dispatching ${options.workflow ?? 'retrain.yml'} failed (${status ?? (err as Error).message.split('\n')[0]}). Give the workflow actions: write.`,
    );
  }
}
