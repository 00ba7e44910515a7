/**
 * The canary's desired state: the model directory (`out/model`) the environment's lockfile pins,
 * read from git objects (no checkout): by default the lockfile at the head of the environment's
 * branch (`promotion/<env>.yaml` `branch:`, else `origin/<branch>`), whatever is checked out;
 * `ref` names another revision; `workingTree` reads the working tree's lockfile instead.
 */
import { readLockfile } from '../lockfile.ts';
import { ConfigError } from '../errors.ts';
import type { Repo } from '../repo.ts';
import type { Lockfile } from '../types.ts';
import type { ModelRef } from '../serving/endpoint.ts';
import { modelOf } from '../environment/model.ts';
import { PATHS } from '../paths.ts';
import { environmentBranch, revParse } from '../environment/refs.ts';
import { readCommittedLockfileAt } from '../environment/revision.ts';

export interface DesiredOptions {
  /** Environment whose branch pins the model (the default source). */
  env?: string;
  /** A revision to read instead of the environment's branch. */
  ref?: string;
  /** Read the working tree's lockfile (neither `env` nor `ref`). */
  workingTree?: boolean;
}

/**
 * The revision `readDesiredModel` reads for `env`: its branch, or the remote-tracking branch
 * when only that exists (a CI checkout of another branch).
 */
export async function environmentRevision(repo: Repo, env: string): Promise<string> {
  const branch = await environmentBranch(repo.root, env);
  // Full ref names: a tag called like the branch (`git tag staging`) must not stand in for it.
  if (await revParse(repo.root, `refs/heads/${branch}`)) return `refs/heads/${branch}`;
  if (await revParse(repo.root, `refs/remotes/origin/${branch}`)) return `refs/remotes/origin/${branch}`;
  throw new ConfigError(
    `${env}: environment branch "${branch}" does not exist. Create it (git branch ${branch}) or promote into it (lockstep promote ${env}), or pass --ref.`,
  );
}

/** The model a lockfile pins (the out with path `out/model`), or undefined. */
export function pinnedModel(lockfile: Lockfile): ModelRef | undefined {
  const model = modelOf(lockfile);
  return model ? { ...model } : undefined;
}

/**
 * Reads the desired model: from the lockfile at `ref`, else at the head of `env`'s branch, else
 * (`workingTree`, or neither given) the working tree's lockfile.
 */
export async function readDesiredModel(repo: Repo, options: DesiredOptions = {}): Promise<ModelRef> {
  let lockfile: Lockfile;
  let where = 'artifacts.lock.yaml';
  let commit: string | undefined;
  const ref =
    options.ref ??
    (options.env && !options.workingTree ? await environmentRevision(repo, options.env) : undefined);
  if (ref) {
    const shown = ref.replace(/^refs\/(heads|remotes)\//, '');
    where = `artifacts.lock.yaml@${shown}`;
    const committed = await readCommittedLockfileAt(repo.root, ref, { label: where });
    if (!committed)
      throw new ConfigError(
        `${where}: missing. Run the pipeline (lockstep repro) and commit the lockfile on ${shown}.`,
      );
    commit = committed.commit;
    lockfile = committed.lockfile;
  } else {
    lockfile = readLockfile(repo);
  }
  const model = pinnedModel(lockfile);
  if (!model)
    throw new ConfigError(
      `${where}: no stage's outs pin "${PATHS.model}". Run lockstep repro to train and pin a model.`,
    );
  return commit ? { ...model, commit } : model;
}
