/**
 * The canary's desired state: the model directory (`out/model`) the environment's lockfile pins,
 * read from the working tree or, with a revision, from git objects (no checkout).
 */
import { readFileAtRev, resolveRev } from '../git.ts';
import { parseLockfile, readLockfile } from '../lockfile.ts';
import { ConfigError } from '../errors.ts';
import type { Repo } from '../repo.ts';
import type { Lockfile } from '../types.ts';
import type { ModelRef } from '../serving/endpoint.ts';
import { PATHS } from '../paths.ts';

/** The model a lockfile pins (the out with path `out/model`), or undefined. */
export function pinnedModel(lockfile: Lockfile): ModelRef | undefined {
  const ordered = [lockfile.stages.train, ...Object.values(lockfile.stages)];
  for (const entry of ordered) {
    const out = entry?.outs.find((o) => o.path === PATHS.model);
    if (out) return { ...out };
  }
  return undefined;
}

/** Reads the desired model from the working tree's lockfile, or the lockfile at `ref`. */
export async function readDesiredModel(repo: Repo, options: { ref?: string } = {}): Promise<ModelRef> {
  let lockfile: Lockfile;
  let where = 'artifacts.lock.yaml';
  let commit: string | undefined;
  if (options.ref) {
    commit = await resolveRev(repo.root, options.ref);
    where = `artifacts.lock.yaml@${options.ref}`;
    const text = await readFileAtRev(repo.root, commit, 'artifacts.lock.yaml');
    if (text === undefined)
      throw new ConfigError(
        `${where}: missing. Run the pipeline (lockstep repro) and commit the lockfile on ${options.ref}.`,
      );
    lockfile = parseLockfile(text, where);
  } else {
    lockfile = readLockfile(repo);
  }
  const model = pinnedModel(lockfile);
  if (!model)
    throw new ConfigError(
      `${where}: stages.train.outs: no "${PATHS.model}" entry. Run lockstep repro to train and pin a model.`,
    );
  return commit ? { ...model, commit } : model;
}
