/**
 * What was deployed in an environment and when: the first-parent history of the environment's
 * branch (every change of the pinned model), merged with deployment records (local JSON lines,
 * and GitHub Deployments when a client is given).
 */
import type { Repo } from '../repo.ts';
import { environmentBranch } from '../environment/refs.ts';
import { withRegistrySession } from '../registry/environments.ts';
import { LOCKFILE } from '../registry/registry.ts';
import { summarizeBlobs } from '../registry/lockfile-cache.ts';
import { fileHistory, type FileChange } from '../git-log.ts';
import { listRefs } from '../git.ts';
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

/** Tag names by the commit they point at (annotated tags peeled), from one `git for-each-ref`. */
async function tagsByCommit(root: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const ref of await listRefs(root)) {
    if (ref.kind !== 'tag') continue;
    out.set(ref.commit, [...(out.get(ref.commit) ?? []), ref.name]);
  }
  return out;
}

/** The model changes on `env`'s branch, newest first. */
export async function environmentHistory(
  repo: Repo,
  env: string,
  options: { github?: { client: GitHubClient; slug: RepoSlug } } = {},
): Promise<EnvironmentHistory> {
  const root = repo.root;
  // Git is read once: the branch's first-parent lockfile history (commits and blob ids), the
  // blobs not parsed before (one cat-file process), and the tags (one for-each-ref). The tags
  // and the session's own git checks run while the policy parses, and the head's lockfile is
  // looked up while the history streams: each git process waited on in turn is a start-up.
  const tags = tagsByCommit(root);
  tags.catch(() => {});
  const branchOf = environmentBranch(root, env);
  branchOf.catch(() => {});
  const changes = await withRegistrySession(root, async ({ reader, cache }) => {
    const branch = await branchOf;
    const head =
      (await reader.revParse(`refs/heads/${branch}`)) ??
      (await reader.revParse(`refs/remotes/origin/${branch}`));
    if (!head) {
      throw new LockstepError(`${env}: branch "${branch}" does not exist. Nothing was deployed there yet.`);
    }
    const headFile = reader.fileAt(head, LOCKFILE);
    headFile.catch(() => {});
    const rows: FileChange[] = [];
    for await (const c of fileHistory(root, LOCKFILE, { revs: [head], firstParent: true, reader }))
      rows.push(c);
    const headBlob = (await headFile)?.oid;
    const blobs = rows.flatMap((r) => (r.blob ? [r.blob] : []));
    const [summaries, tagsAt] = await Promise.all([
      summarizeBlobs(reader, cache, headBlob ? [...blobs, headBlob] : blobs),
      tags,
    ]);
    const changes: HistoryEntry[] = [];
    // Oldest first, so "the model changed" is judged against the previous point.
    let previous: string | undefined;
    for (const { commit, date, subject, parents, blob } of rows.reverse()) {
      const summary = blob ? summaries.get(blob) : undefined;
      const model = summary?.model?.hash;
      if (!summary || !model || model === previous) continue;
      previous = model;
      const candidates = [commit, ...parents.slice(1)];
      const tags = new Set<string>();
      for (const c of candidates) {
        for (const t of tagsAt.get(c) ?? []) if (t.includes('#' + env + '#') || t.includes('@v')) tags.add(t);
      }
      changes.push({
        commit,
        date,
        subject,
        model,
        metrics: summary.metrics,
        tags: [...tags].sort(),
        current: false,
      });
    }
    changes.reverse();
    const headModel = headBlob ? summaries.get(headBlob)?.model?.hash : undefined;
    if (changes[0] && changes[0].model === headModel) changes[0].current = true;
    return changes;
  });
  const github = options.github ? await listDeployments(options.github.client, options.github.slug, env) : [];
  return { env, branch: await branchOf, changes, records: await readDeployments(repo, env), github };
}
