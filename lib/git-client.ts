/**
 * The one place simple-git is constructed (the architecture test keeps it so). A git that cannot
 * be started (none on PATH) fails every call with the one line of GIT_NOT_FOUND, which says how
 * to install it, instead of simple-git's `Error: spawn git ENOENT` and its stack; isGitNotFound
 * tells that error, so a caller that takes a failed command as an answer (no commit yet, no such
 * ref) can let it through (unlessGitMissing). The reads of lib/git.ts and lib/git-reader.ts run
 * git without simple-git and fail with GitNotFoundError.
 */
import { existsSync } from 'node:fs';
import { GitError, simpleGit, type SimpleGit } from 'simple-git';
import { GIT_NOT_FOUND, isGitNotFound } from './errors.ts';

/**
 * What simple-git keeps of a git that did not start: the spawn error's stack in place of stderr
 * (`Error: spawn git ENOENT\n    at ...`).
 */
const SPAWN_FAILED = /^Error: spawn git ENOENT\b/;

/** A simple-git client for the repository (or worktree) at `root`. */
export function gitClient(root: string): SimpleGit {
  return simpleGit({
    baseDir: root,
    errors(error, result) {
      // The same ENOENT comes for a working directory removed since: that is not a missing git.
      if (!SPAWN_FAILED.test(Buffer.concat(result.stdErr).toString('utf8')) || !existsSync(root))
        return error;
      // simple-git wraps any error that is not its own GitError, so the missing git is one, with
      // the fields of Node's spawn error (isGitNotFound reads them).
      return Object.assign(new GitError(undefined, GIT_NOT_FOUND), {
        code: 'ENOENT',
        syscall: 'spawn git',
        path: 'git',
      });
    },
  });
}

/**
 * A `.catch` handler for a git command whose failure has an answer (`fallback`: no commit yet,
 * no such ref), except a git that is not there at all: that is rethrown, not taken as the answer.
 */
export function unlessGitMissing<T>(fallback: T): (err: unknown) => T {
  return (err) => {
    if (isGitNotFound(err)) throw err;
    return fallback;
  };
}
