/**
 * The training-side reference for monitoring an environment: featurize's `stats.json`
 * (histograms per summary feature) and `index.json` (feature names, training labels), as pinned
 * by the lockfile on the environment's branch, read from the cache or the remote without a
 * checkout. Falls back to the workspace's `out/features` when the environment has no branch yet
 * (the embedded, single-machine case).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LockstepError } from '../errors.ts';
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import { openArtifact } from '../registry/fetch.ts';
import { environmentBranch, revParse } from '../environment/refs.ts';
import type { MonitorReference } from './monitor.ts';

interface FeatureIndex {
  featureNames: string[];
  labels: string[];
  splits: Record<string, { labels: number[] }>;
}

/** Builds the reference from the two files' text. */
export function parseReference(statsText: string, indexText: string): MonitorReference {
  const stats = JSON.parse(statsText) as Record<string, { edges: number[]; counts: number[] }>;
  const index = JSON.parse(indexText) as FeatureIndex;
  const labelCounts: Record<string, number> = {};
  for (const y of index.splits.train?.labels ?? []) {
    const name = index.labels[y];
    labelCounts[name] = (labelCounts[name] ?? 0) + 1;
  }
  return { featureNames: index.featureNames, histograms: stats, labelCounts };
}

/** Loads the reference for `env` (see the module comment). */
export async function loadReference(
  repo: Repo,
  env: string,
  options: { featuresDir?: string; remote?: Remote } = {},
): Promise<{ reference: MonitorReference; source: string }> {
  const dir = options.featuresDir ?? 'out/features';
  const branch = await environmentBranch(repo.root, env);
  const rev = (await revParse(repo.root, branch))
    ? branch
    : (await revParse(repo.root, `origin/${branch}`))
      ? `origin/${branch}`
      : undefined;
  if (rev) {
    try {
      const stats = await openArtifact(repo, `${dir}/stats.json`, { rev, remote: options.remote });
      const index = await openArtifact(repo, `${dir}/index.json`, { rev, remote: options.remote });
      return {
        reference: parseReference(stats.toString('utf8'), index.toString('utf8')),
        source: `${branch} lockfile`,
      };
    } catch (err) {
      if (!(err instanceof LockstepError)) throw err;
      // Fall through to the workspace: the branch may predate featurize statistics.
    }
  }
  try {
    const stats = await readFile(path.join(repo.root, dir, 'stats.json'), 'utf8');
    const index = await readFile(path.join(repo.root, dir, 'index.json'), 'utf8');
    return { reference: parseReference(stats, index), source: `workspace ${dir}` };
  } catch {
    throw new LockstepError(
      `${dir}/stats.json: no training statistics for ${env}. Run lockstep repro (featurize writes them) or promote a model into ${env}.`,
    );
  }
}
