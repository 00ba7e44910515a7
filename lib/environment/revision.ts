/**
 * What a revision holds, read from git objects (no checkout): the lockfile at a commit, and the
 * head of an environment's branch. The one home for these reads below registry, promotion, gate,
 * canary and monitoring; parsing is lib/lockfile.ts's reader of committed lockfiles.
 */
import { withGitReader } from '../git-reader.ts';
import { readCommittedLockfile, type CommittedLockfile, type CommittedLockfileOptions } from '../lockfile.ts';
import type { Lockfile } from '../types.ts';
import { environmentBranch, revParse } from './refs.ts';

/**
 * The lockfile as committed at `rev` (its commit, text and parsed content); undefined when that
 * commit has none. `label` names the file in errors (default `artifacts.lock.yaml@<rev>`), `repair`
 * is the fix they end with.
 */
export async function readCommittedLockfileAt(
  root: string,
  rev: string,
  options: CommittedLockfileOptions = {},
): Promise<CommittedLockfile | undefined> {
  return withGitReader(root, (reader) => readCommittedLockfile(reader, rev, options));
}

/** Reads and parses the lockfile as of `rev`; undefined when that commit has none. */
export async function readLockfileAt(root: string, rev: string): Promise<Lockfile | undefined> {
  return (await readCommittedLockfileAt(root, rev))?.lockfile;
}

/**
 * The commit at the head of `branch`: the local branch, else its remote-tracking branch
 * (`origin/<branch>`, as CI checkouts have it); undefined when neither exists.
 */
export async function branchHead(root: string, branch: string): Promise<string | undefined> {
  return (
    (await revParse(root, `refs/heads/${branch}`)) ?? (await revParse(root, `refs/remotes/origin/${branch}`))
  );
}

/** The branch of environment `env` and the commit at its head (see {@link branchHead}). */
export async function environmentHead(
  root: string,
  env: string,
): Promise<{ branch: string; commit: string | undefined }> {
  const branch = await environmentBranch(root, env);
  return { branch, commit: await branchHead(root, branch) };
}
