/**
 * Locating a lockstep repository and the well-known paths inside it.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LockstepError } from './errors.ts';

export interface Repo {
  /** Absolute repository root (the directory holding params.yaml or .git). */
  root: string;
  /** `.lockstep/` */
  stateDir: string;
  /** `.lockstep/cache/` (objects under `sha256/ab/cdef...`). */
  cacheDir: string;
  /** `artifacts.lock.yaml` */
  lockfilePath: string;
  /** `params.yaml` */
  paramsPath: string;
  /** `.lockstep/config.yaml` (committed: remotes) */
  configPath: string;
  /** `.lockstep/tmp/`: temp files of atomic writes to tracked files (lockfile, params). */
  tmpDir: string;
}

/** Paths of a repository rooted at `root` (no existence check). */
export function repoAt(root: string): Repo {
  const abs = path.resolve(root);
  const stateDir = path.join(abs, '.lockstep');
  return {
    root: abs,
    stateDir,
    cacheDir: path.join(stateDir, 'cache'),
    lockfilePath: path.join(abs, 'artifacts.lock.yaml'),
    paramsPath: path.join(abs, 'params.yaml'),
    configPath: path.join(stateDir, 'config.yaml'),
    tmpDir: path.join(stateDir, 'tmp'),
  };
}

/**
 * Walks up from `cwd` to the nearest directory with `params.yaml`, `artifacts.lock.yaml`,
 * `.lockstep/` or `.git`, and returns its paths.
 */
export function findRepo(cwd: string): Repo {
  let dir = path.resolve(cwd);
  while (true) {
    for (const marker of ['params.yaml', 'artifacts.lock.yaml', '.lockstep', '.git']) {
      if (existsSync(path.join(dir, marker))) return repoAt(dir);
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new LockstepError(
        `${cwd}: not inside a lockstep repository. Run lockstep from a directory with params.yaml or .git.`,
      );
    }
    dir = parent;
  }
}
