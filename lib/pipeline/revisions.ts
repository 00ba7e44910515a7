/**
 * What `params diff` and `metrics diff` compare: params or metrics at a git revision (read from
 * git objects) or in the workspace (`workspace`, or no revision).
 */
import fs from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { Repo } from '../repo.ts';
import { ConfigError } from '../errors.ts';
import { readFileAtRev } from '../git.ts';
import { loadParams, paramsAtRev, type Params } from '../params.ts';
import { lockfileAtRev, readLockfile } from '../lockfile.ts';
import { lockfileMetrics } from './metrics.ts';
import { recordedEvalMetrics, type RecordedEvalMetrics } from './recorded-slices.ts';
import type { Remote } from '../store/remote.ts';
import type { Lockfile } from '../types.ts';

/** The name used for the working tree. */
export const WORKSPACE = 'workspace';

/**
 * Params at `rev`, or in the workspace when `rev` is undefined or `workspace`, with defaults
 * filled in. For a diff, a revision whose params no longer fit today's schema (a key renamed
 * since) is still shown: its raw YAML values are used instead of failing.
 */
export async function paramsAt(
  repo: Repo,
  rev: string | undefined,
): Promise<Params | Record<string, unknown>> {
  const workspace = rev === undefined || rev === WORKSPACE;
  try {
    return workspace ? loadParams(repo) : await paramsAtRev(repo, rev);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const text = workspace
      ? fs.existsSync(repo.paramsPath)
        ? fs.readFileSync(repo.paramsPath, 'utf8')
        : ''
      : ((await readFileAtRev(repo.root, rev, 'params.yaml')) ?? '');
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch {
      throw err;
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw err;
    return raw as Record<string, unknown>;
  }
}

/** The lockfile at `rev` (read from git objects), or the workspace's for undefined or `workspace`. */
export async function lockfileAtRevision(repo: Repo, rev: string | undefined): Promise<Lockfile> {
  return rev === undefined || rev === WORKSPACE ? readLockfile(repo) : lockfileAtRev(repo, rev);
}

/** Every stage's metrics (`<stage>.<metric>`) from the lockfile at `rev` or in the workspace. */
export async function metricsAt(repo: Repo, rev: string | undefined): Promise<Record<string, number>> {
  return lockfileMetrics(await lockfileAtRevision(repo, rev));
}

/**
 * Evaluate's metrics at `rev` or in the workspace, slices included: the lockfile's headline
 * metrics and the slices from the evaluate out, by hash (lib/pipeline/recorded-slices.ts).
 */
export async function evalMetricsAt(
  repo: Repo,
  rev: string | undefined,
  options: { remote?: Remote } = {},
): Promise<RecordedEvalMetrics> {
  const label = rev === undefined ? WORKSPACE : /^[0-9a-f]{40,64}$/.test(rev) ? rev.slice(0, 8) : rev;
  return recordedEvalMetrics(repo, await lockfileAtRevision(repo, rev), { ...options, label });
}
