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
import { GIT_NOT_EXECUTABLE, GIT_NOT_FOUND, isGitNotFound } from './errors.ts';

/**
 * What simple-git keeps of a git that did not start: the spawn error's stack in place of stderr
 * (`Error: spawn git ENOENT\n    at ...`).
 */
const SPAWN_FAILED = /^Error: spawn git (ENOENT|EACCES)\b/;

/** A simple-git client for the repository (or worktree) at `root`. */
export function gitClient(root: string): SimpleGit {
  return simpleGit({
    baseDir: root,
    errors(error, result) {
      const spawn = SPAWN_FAILED.exec(Buffer.concat(result.stdErr).toString('utf8'));
      if (!spawn) return error;
      // The same ENOENT comes for a working directory removed since: that is not a missing git,
      // and is said as gitRaw says it (the spawn error's text would read as a missing git).
      if (!existsSync(root))
        return new GitError(
          undefined,
          `${root}: directory does not exist. Run lockstep inside a git repository.`,
        );
      // simple-git wraps any error that is not its own GitError, so the missing git is one, with
      // the fields of Node's spawn error (isGitNotFound reads them).
      const code = spawn[1]!;
      return Object.assign(new GitError(undefined, code === 'EACCES' ? GIT_NOT_EXECUTABLE : GIT_NOT_FOUND), {
        code,
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
