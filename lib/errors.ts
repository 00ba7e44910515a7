/**
 * Typed errors. Every message is one line: `<file or key>: <problem> "<value>". <how to fix>`.
 * Only the CLI and action entries turn these into exit codes.
 */
export class LockstepError extends Error {
  /** Process exit code the CLI uses for this error (1 = failure, 2 = usage). */
  readonly exitCode: number;
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** Bad command-line usage: exit code 2. */
export class UsageError extends LockstepError {
  constructor(message: string) {
    super(message, { exitCode: 2 });
  }
}

/** A file in the repository (params, lockfile, promotion policy, manifest) is malformed. */
export class ConfigError extends LockstepError {}

/** Every problem of a configuration file at once: one line each in `message` and `lines`. */
export class ConfigProblems extends ConfigError {
  readonly lines: string[];
  constructor(lines: string[]) {
    super(lines.join('\n'));
    this.lines = lines;
  }
}

/** `artifacts.lock.yaml` holds git conflict markers: `lockstep lock resolve` merges it. */
export class LockfileConflictError extends ConfigError {}

/** An object in a cache or remote is missing or does not match its hash. */
export class IntegrityError extends LockstepError {}

/**
 * An untrusted path (a manifest entry, a gs:// object name) would leave the directory it is
 * written into, or is not portable. Never treated as a cache miss: it signals a hostile object.
 */
export class UnsafePathError extends IntegrityError {}

/** A stage failed while running; `skipped` names the dependents that did not run. */
export class StageError extends LockstepError {
  readonly stage: string;
  readonly skipped: string[];
  constructor(stage: string, message: string, skipped: string[] = [], cause?: unknown) {
    super(message, { cause });
    this.stage = stage;
    this.skipped = skipped;
  }
}

/** Another process holds the repository lock. */
export class LockedError extends LockstepError {}

/** A gate or a promotion policy said no. */
export class RefusedError extends LockstepError {}

/**
 * Formats `<where>: <problem> "<value>". <fix>` with the value JSON-quoted. `where` is often a
 * file name, which may hold a newline or another control character: those are escaped as in
 * JSON, so the message stays one line and the CLI does not cut it at the newline.
 */
export function formatProblem(where: string, problem: string, value: unknown, fix: string): string {
  const shown = value === undefined ? '' : ` ${JSON.stringify(value)}`;
  return `${escapeControl(where)}: ${problem}${shown}. ${fix}`;
}

/** `s` with C0/C1 control characters written as JSON escapes (`\n`, `\u0001`). */
export function escapeControl(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) =>
    c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** What every command says when it needs git and none is on PATH. */
export const GIT_NOT_FOUND =
  'git: not found on PATH. Install git (apt-get install git, brew install git) or add its directory to PATH, then run the command again.';

/** A `git` on PATH that is not executable (and no other git after it): EACCES. */
export const GIT_NOT_EXECUTABLE =
  'git: the git found on PATH cannot be run (permission denied). Make it executable (chmod +x), or install git (apt-get install git, brew install git), then run the command again.';

/** No `git` to run: not installed, or not on this process's PATH. */
export class GitNotFoundError extends LockstepError {
  constructor(options: { cause?: unknown } = {}) {
    super(gitNotStartedMessage(options.cause), options);
  }
}

/** The one line for a git that could not be started: none on PATH, or one that is not executable. */
function gitNotStartedMessage(cause: unknown): string {
  if (cause instanceof GitNotFoundError) return cause.message;
  const e = cause as NodeJS.ErrnoException | undefined;
  const eacces =
    e?.code === 'EACCES' || (cause instanceof Error && /\bspawn git EACCES\b/.test(cause.message));
  return eacces ? GIT_NOT_EXECUTABLE : GIT_NOT_FOUND;
}

/**
 * True for the error Node gives when it cannot start `git` (`spawn git ENOENT`), as thrown or as
 * simple-git words it. The same error comes for a working directory that does not exist: callers
 * that know the directory check it first.
 */
export function isGitNotFound(err: unknown): boolean {
  if (err instanceof GitNotFoundError) return true;
  const e = err as NodeJS.ErrnoException | undefined;
  if ((e?.code === 'ENOENT' || e?.code === 'EACCES') && (e.syscall === 'spawn git' || e.path === 'git'))
    return true;
  return (
    err instanceof Error &&
    !(err instanceof LockstepError) &&
    /\bspawn git (?:ENOENT|EACCES)\b/.test(err.message)
  );
}

/** Turns any thrown value into a single line (no stack) for the CLI. */
export function toOneLine(err: unknown): string {
  if (isGitNotFound(err)) return gitNotStartedMessage(err);
  if (err instanceof Error) return err.message.split('\n')[0] ?? err.name;
  return String(err).split('\n')[0] ?? 'unknown error';
}

/** Stopped by a signal (Ctrl-C, a cancelled workflow): exit code 130 (SIGINT) or 143 (SIGTERM). */
export class InterruptedError extends LockstepError {
  constructor(message: string, signal: NodeJS.Signals) {
    super(message, { exitCode: signal === 'SIGTERM' ? 143 : 130 });
  }
}
