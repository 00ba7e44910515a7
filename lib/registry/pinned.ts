/**
 * The model an environment runs: the one pinned by the lockfile at the environment's branch
 * head, or, when the environment has no branch yet (a single-machine set-up), the one pinned by
 * the workspace lockfile. Checked out by hash into `.lockstep/models/<hash>/`.
 */
import { readLockfile } from '../lockfile.ts';
import { LockstepError } from '../errors.ts';
import type { Output } from '../output.ts';
import type { Repo } from '../repo.ts';
import { defaultRemote } from '../store/remote-config.ts';
import { materializeModel } from '../serving/model-store.ts';
import { environmentBranch, revParse } from '../environment/refs.ts';
import { LOCKFILE } from './registry.ts';
import { modelOf } from '../environment/model.ts';
import { readLockfileAt } from '../environment/revision.ts';

export interface PinnedModel {
  hash: string;
  dir: string;
  /** `<branch>@<commit8>` or `workspace`. */
  source: string;
}

/** Resolves and materializes the model pinned for `env`. */
export async function resolvePinnedModel(
  repo: Repo,
  env: string,
  options: { out?: Output } = {},
): Promise<PinnedModel> {
  const branch = await environmentBranch(repo.root, env);
  const commit = (await revParse(repo.root, branch)) ?? (await revParse(repo.root, `origin/${branch}`));
  const lockfile = commit ? await readLockfileAt(repo.root, commit) : readLockfile(repo);
  const model = lockfile ? modelOf(lockfile) : undefined;
  if (!model) {
    throw new LockstepError(
      `${LOCKFILE}: no model pinned for ${env}${commit ? ` on ${branch}` : ' in the workspace'}. Run lockstep repro (or promote a model into ${env}).`,
    );
  }
  const dir = await materializeModel(repo, model, { remote: await defaultRemote(repo), out: options.out });
  return { hash: model.hash, dir, source: commit ? `${branch}@${commit.slice(0, 8)}` : 'workspace' };
}
