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

/** Every stage's metrics (`<stage>.<metric>`) from the lockfile at `rev` or in the workspace. */
export async function metricsAt(repo: Repo, rev: string | undefined): Promise<Record<string, number>> {
  const lf = rev === undefined || rev === WORKSPACE ? readLockfile(repo) : await lockfileAtRev(repo, rev);
  return lockfileMetrics(lf);
}
