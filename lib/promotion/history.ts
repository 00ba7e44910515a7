/**
 * What was deployed in an environment and when: the first-parent history of the environment's
 * branch (every change of the pinned model), merged with deployment records (local JSON lines,
 * and GitHub Deployments when a client is given).
 */
import { simpleGit } from 'simple-git';
import type { Repo } from '../repo.ts';
import { environmentBranch, revParse } from '../environment/refs.ts';
import { LOCKFILE, metricsOf, modelOf, readLockfileAt } from '../registry/registry.ts';
import { LockstepError } from '../errors.ts';
import { readDeployments, type DeploymentRecord } from './records.ts';
import { listDeployments, type GitHubClient, type GitHubDeployment, type RepoSlug } from './github.ts';

export interface HistoryEntry {
  commit: string;
  date: string;
  subject: string;
  model: string;
  /** The headline metric values recorded with it. */
  metrics: Record<string, number>;
  /** GTO tags on the commit or its second parent (the promoted commit). */
  tags: string[];
  /** True for the model pinned at the branch head. */
  current: boolean;
}

export interface EnvironmentHistory {
  env: string;
  branch: string;
  /** Newest first: each point where the pinned model changed. */
  changes: HistoryEntry[];
  records: DeploymentRecord[];
  github: GitHubDeployment[];
}

const SEP = '\x1f';

/** The model changes on `env`'s branch, newest first. */
export async function environmentHistory(
  repo: Repo,
  env: string,
  options: { github?: { client: GitHubClient; slug: RepoSlug } } = {},
): Promise<EnvironmentHistory> {
  const root = repo.root;
  const branch = await environmentBranch(root, env);
  const head =
    (await revParse(root, `refs/heads/${branch}`)) ?? (await revParse(root, `refs/remotes/origin/${branch}`));
  if (!head) {
    throw new LockstepError(`${env}: branch "${branch}" does not exist. Nothing was deployed there yet.`);
  }
  const git = simpleGit(root);
  const log = await git.raw([
    'log',
    '--first-parent',
    `--format=%H${SEP}%cI${SEP}%s${SEP}%P`,
    head,
    '--',
    LOCKFILE,
  ]);
  const rows = log
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(SEP));
  const changes: HistoryEntry[] = [];
  // Oldest first, so "the model changed" is judged against the previous point.
  let previous: string | undefined;
  for (const [commit, date, subject, parents] of rows.reverse()) {
    const lock = await readLockfileAt(root, commit);
    const model = lock ? modelOf(lock)?.hash : undefined;
    if (!lock || !model || model === previous) continue;
    previous = model;
    const candidates = [commit, ...(parents?.split(' ').slice(1) ?? [])];
    const tags = new Set<string>();
    for (const c of candidates) {
      for (const t of (await git.raw(['tag', '--points-at', c])).split('\n'))
        if (t.includes('#' + env + '#') || t.includes('@v')) tags.add(t);
    }
    changes.push({
      commit,
      date,
      subject,
      model,
      metrics: metricsOf(lock).metrics,
      tags: [...tags].sort(),
      current: false,
    });
  }
  changes.reverse();
  const headLock = await readLockfileAt(root, head);
  const headModel = headLock ? modelOf(headLock)?.hash : undefined;
  if (changes[0] && changes[0].model === headModel) changes[0].current = true;
  const github = options.github ? await listDeployments(options.github.client, options.github.slug, env) : [];
  return { env, branch, changes, records: await readDeployments(repo, env), github };
}
