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
import { flattenMetrics, lockfileMetrics } from './metrics.ts';
import { recordedEvalMetrics, slicesSource, type RecordedEvalMetrics } from './recorded-slices.ts';
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
  return recordedEvalMetrics(repo, await lockfileAtRevision(repo, rev), { ...options, label: labelOf(rev) });
}

/** How errors name `rev`: `workspace`, a short commit, or the name given. */
function labelOf(rev: string | undefined): string {
  return rev === undefined ? WORKSPACE : /^[0-9a-f]{40,64}$/.test(rev) ? rev.slice(0, 8) : rev;
}

/**
 * Every stage's metrics at `rev` with evaluate's slices (`evaluate.slices.speaker.S03.n`, ...),
 * as lockfiles carried them before the slices left them: read from the evaluate out by hash in
 * the local cache when the lockfile leaves them out. `missing` is the one-line reason when they
 * could not be read (the metrics are then the lockfile's alone).
 */
export async function recordedMetricsAt(
  repo: Repo,
  rev: string | undefined,
): Promise<{ metrics: Record<string, number>; missing?: string }> {
  const lf = await lockfileAtRevision(repo, rev);
  const entry = lf.stages.evaluate;
  if (!entry || !slicesSource(lf)) return { metrics: lockfileMetrics(lf) };
  const recorded = await recordedEvalMetrics(repo, lf, { label: labelOf(rev) });
  // In the evaluate entry's place, so the keys come in the order the lockfile had them.
  const evaluate = {
    ...entry,
    metrics: { ...entry.metrics, ...flattenMetrics({ slices: recorded.slices }) },
  };
  const metrics = lockfileMetrics({ stages: { ...lf.stages, evaluate } });
  return recorded.missing ? { metrics, missing: recorded.missing } : { metrics };
}
