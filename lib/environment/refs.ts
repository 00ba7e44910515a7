/**
 * Resolving what users type as a registry reference: a commit, a branch, a tag, or an
 * environment name (`dev`, `staging`, `prod`, resolved through `promotion/<env>.yaml`).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LockstepError } from '../errors.ts';
import { revParse as gitRevParse } from '../git.ts';
import type { GitReader } from '../git-reader.ts';
import { ENVIRONMENTS, readPolicy } from './policy.ts';

export interface ResolvedRef {
  /** What the user typed. */
  ref: string;
  /** Full commit id. */
  commit: string;
  /** Set when `ref` named an environment. */
  env?: string;
  /** The branch `ref` resolved through (environment branch or a branch name). */
  branch?: string;
}

/** True if `name` is one of the fixed environments. */
export function isEnvironment(name: string): boolean {
  return (ENVIRONMENTS as readonly string[]).includes(name);
}

/** The branch of environment `env` (from its policy; the env name when no policy file exists). */
export async function environmentBranch(root: string, env: string): Promise<string> {
  if (!existsSync(path.join(root, 'promotion', `${env}.yaml`))) return env;
  return (await readPolicy(root, env)).branch;
}

/** The commit `rev` resolves to, or undefined when it names nothing (lib/git.ts's revParse). */
export async function revParse(root: string, rev: string): Promise<string | undefined> {
  return gitRevParse(root, rev);
}

/**
 * Resolves a commit, branch, tag or environment name to a commit. An environment resolves to
 * its branch, or to `origin/<branch>` when only the remote-tracking branch exists. With `reader`,
 * every lookup goes through that open reader instead of a git process each.
 * @throws LockstepError naming the ref and what it may be.
 */
export async function resolveRef(root: string, ref: string, reader?: GitReader): Promise<ResolvedRef> {
  const parse = (rev: string) => (reader ? reader.revParse(rev) : gitRevParse(root, rev));
  if (isEnvironment(ref)) {
    const branch = await environmentBranch(root, ref);
    // Full ref names: a tag or other ref called like the branch must not stand in for it.
    const commit = (await parse(`refs/heads/${branch}`)) ?? (await parse(`refs/remotes/origin/${branch}`));
    if (!commit) {
      throw new LockstepError(
        ref === ENVIRONMENTS[0]
          ? `${ref}: environment branch "${branch}" does not exist yet. Create it (git branch ${branch}) and commit a lockfile that pins a model (lockstep repro).`
          : `${ref}: environment branch "${branch}" does not exist yet. Promote a model into it first (lockstep promote ${ref}).`,
      );
    }
    return { ref, commit, env: ref, branch };
  }
  const commit = await parse(ref);
  if (!commit) {
    throw new LockstepError(
      `ref "${ref}": not a commit, branch, tag or environment. Use a commit id, a branch or tag name, or one of ${ENVIRONMENTS.join(', ')}.`,
    );
  }
  const isBranch = (await parse(`refs/heads/${ref}`)) !== undefined;
  return { ref, commit, branch: isBranch ? ref : undefined };
}
