/**
 * What `params diff` and `metrics diff` compare: params or metrics at a git revision (read from
 * git objects) or in the workspace (`workspace`, or no revision).
 */
import type { Repo } from '../repo.ts';
import { loadParams, paramsAtRev, type Params } from '../params.ts';
import { lockfileAtRev, readLockfile } from '../lockfile.ts';
import { lockfileMetrics } from './metrics.ts';

/** The name used for the working tree. */
export const WORKSPACE = 'workspace';

/** Params at `rev`, or in the workspace when `rev` is undefined or `workspace`. */
export async function paramsAt(repo: Repo, rev: string | undefined): Promise<Params> {
  return rev === undefined || rev === WORKSPACE ? loadParams(repo) : paramsAtRev(repo, rev);
}

/** Every stage's metrics (`<stage>.<metric>`) from the lockfile at `rev` or in the workspace. */
export async function metricsAt(repo: Repo, rev: string | undefined): Promise<Record<string, number>> {
  const lf = rev === undefined || rev === WORKSPACE ? readLockfile(repo) : await lockfileAtRev(repo, rev);
  return lockfileMetrics(lf);
}
