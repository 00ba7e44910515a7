/**
 * The canary's part of the deployment history: every step start, advance, hold, completion and
 * rollback becomes a local deployment record (`.lockstep/deployments/<env>.jsonl`) and, with a
 * GitHub client, a status on the GitHub deployment of that candidate (one deployment per
 * candidate model, found again by its payload). `history` and `registry show` read both.
 * A hold is recorded once per step, not once per scheduled run.
 */
import type { Repo } from '../repo.ts';
import { readDeployments, recordDeployment, type DeploymentRecord } from '../promotion/records.ts';
import {
  createDeployment,
  setDeploymentStatus,
  type GitHubClient,
  type RepoSlug,
} from '../promotion/github.ts';
import type { ReconcileResult } from './reconcile.ts';

/** Record status of each reconcile action (`none` and `cleanup` record nothing). */
const STATUS: Partial<Record<ReconcileResult['action'], string>> = {
  deploy: 'success',
  start: 'canary_started',
  advance: 'canary_step',
  hold: 'canary_hold',
  complete: 'success',
  rollback: 'canary_rolled_back',
};

/** GitHub deployment state of each record status. */
const GITHUB_STATE: Record<string, 'in_progress' | 'success' | 'failure' | 'inactive'> = {
  success: 'success',
  canary_started: 'in_progress',
  canary_step: 'in_progress',
  canary_hold: 'in_progress',
  canary_rolled_back: 'failure',
  rolled_back: 'success',
};

export interface RecordContext {
  env: string;
  /** Commit whose lockfile pinned the candidate (the environment branch head). */
  commit: string;
  /** Traffic percent of the candidate after this pass. */
  percent?: number;
  github?: { client: GitHubClient; slug: RepoSlug };
  /** Serving image (by digest) of the endpoint, recorded with the deployment. */
  image?: string;
}

/**
 * Records one reconcile result; returns the record written, or undefined when there was nothing
 * to record (no change, or the same hold as last time).
 */
export async function recordCanaryResult(
  repo: Repo,
  result: ReconcileResult,
  ctx: RecordContext,
): Promise<DeploymentRecord | undefined> {
  // A rollback that is not a failure is the stable model pinned again mid-canary: it is restored.
  const status = result.action === 'rollback' && !result.failed ? 'rolled_back' : STATUS[result.action];
  const model = result.status?.candidateHash;
  if (!status || !model) return undefined;
  const step = result.status ? result.status.stepIndex + 1 : undefined;
  if (status === 'canary_hold') {
    const last = (await readDeployments(repo, ctx.env)).at(-1);
    if (last?.status === 'canary_hold' && last.model === model && last.step === step) return undefined;
  }
  const record: DeploymentRecord = {
    env: ctx.env,
    commit: ctx.commit,
    model,
    source: 'canary',
    status,
    ...(step !== undefined ? { step } : {}),
    ...(ctx.percent !== undefined ? { percent: ctx.percent } : {}),
    detail: result.reason,
    ...(ctx.image ? { image: ctx.image } : {}),
  };
  await recordDeployment(repo, record);
  if (ctx.github) await postDeploymentStatus(ctx.github, record);
  return record;
}

/**
 * Posts `record` as a status of the GitHub deployment of its model in its environment, creating
 * that deployment (payload `{model, source: "lockstep"}`) the first time the model is seen.
 */
export async function postDeploymentStatus(
  gh: { client: GitHubClient; slug: RepoSlug },
  record: DeploymentRecord,
): Promise<number> {
  const list = await gh.client.request('GET /repos/{owner}/{repo}/deployments', {
    ...gh.slug,
    environment: record.env,
    per_page: 100,
  });
  const existing = (list.data as { id: number; payload?: { model?: string } }[]).find(
    (d) => d.payload?.model === record.model,
  );
  const id =
    existing?.id ??
    (await createDeployment(gh.client, gh.slug, {
      ref: record.commit,
      sha: record.commit,
      environment: record.env,
      description: `model ${record.model.slice(0, 12)}`,
      payload: { model: record.model, source: 'lockstep' },
    }));
  await setDeploymentStatus(
    gh.client,
    gh.slug,
    id,
    GITHUB_STATE[record.status] ?? 'in_progress',
    `${record.status}: ${record.detail ?? ''}`,
  );
  return id;
}
