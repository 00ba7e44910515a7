/**
 * Reading git history without touching the working tree: files at a revision straight from the
 * object database (one `git cat-file --batch` per call, see git-reader.ts), refs, recent commits,
 * HEAD and dirtiness. Each read is one `git` process (gitRaw).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { withGitReader } from './git-reader.ts';
import { GitNotFoundError, LockstepError, isGitNotFound } from './errors.ts';

/**
 * A git command that failed: what it printed (stdout, then stderr), as simple-git's `GitError`
 * words it, so a read moved off simple-git fails with the same message.
 */
export class GitCommandError extends Error {
  override name = 'GitError';
}

/**
 * Runs `git <args>` in `root` and resolves with its standard output, untrimmed: `simpleGit(root)
 * .raw(args)` without loading simple-git and its dependencies (tens of milliseconds of module
 * loading for a command that reads a ref). Same contract: the command fails only when git exits
 * non-zero and wrote to stderr (`rev-parse --verify --quiet` of nothing is an empty answer), with
 * stdout and stderr as the message. A git killed by a signal fails too (simple-git took its cut
 * output as the answer).
 */
export function gitRaw(
  root: string,
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    // A git that never answers (only for a caller that set a bound): killed, and its pipes let
    // go, so neither it nor a child it left holding them keeps this process open.
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            child.kill('SIGKILL');
            child.stdout.destroy();
            child.stderr.destroy();
            child.unref();
            reject(
              new GitCommandError(
                `git ${args[0] ?? ''}: no answer in ${options.timeoutMs} ms. Run the command again.`,
              ),
            );
          }, options.timeoutMs);
    child.on('close', () => clearTimeout(timer));
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT' && !existsSync(root)
          ? new GitCommandError(`${root}: directory does not exist. Run lockstep inside a git repository.`)
          : isGitNotFound(e)
            ? new GitNotFoundError({ cause: e })
            : e,
      );
    });
    child.on('close', (code, signal) => {
      // Killed by a signal (the OOM killer, a stray kill): what it printed may be cut anywhere, and
      // a cut list of refs or commits must not read as the whole answer.
      if (signal)
        reject(
          new GitCommandError(
            `git ${args[0] ?? ''}: killed by ${signal} before it finished. Run the command again.`,
          ),
        );
      else if (code && err.length > 0)
        reject(new GitCommandError(Buffer.concat([...out, ...err]).toString('utf8')));
      else resolve(Buffer.concat(out).toString('utf8'));
    });
  });
}

/**
 * Fails with GitNotFoundError when no git can be started: for a command to check before it
 * writes anything, when a later step needs git and the ones before it would not fail without.
 */
export async function requireGit(root: string, options: { timeoutMs?: number } = {}): Promise<void> {
  // A git that starts but is not git (a shim whose target is gone exits 127 saying nothing, a
  // stray script) would have every later command "answer" with nothing: no worktree, no stage.
  const version = await gitRaw(root, ['--version'], options);
  if (!/^git version \S/.test(version)) {
    const said = version.trim().split('\n')[0]?.slice(0, 80);
    throw new LockstepError(
      `git: the git on PATH does not work ('git --version' answered ${said ? `"${said}"` : 'nothing'}). Put a working git first on PATH (which git shows it), then run the command again.`,
    );
  }
}

function git(root: string): { raw(args: string[]): Promise<string> } {
  return { raw: (args) => gitRaw(root, args) };
}

/** A branch or tag and the commit it points at (annotated tags are peeled). */
export interface GitRef {
  /** Short name: `main`, `v1.2`. */
  name: string;
  kind: 'branch' | 'tag';
  /** Full ref name: `refs/heads/main`. */
  ref: string;
  commit: string;
}

export interface CommitInfo {
  commit: string;
  /** Commit time, ISO 8601. */
  date: string;
  author: string;
  subject: string;
}

/**
 * The commit `rev` resolves to, or undefined when it names nothing: the one rev-parse (through
 * {@link GitReader.revParse}; a command that reads more than one thing opens a reader itself).
 */
export async function revParse(root: string, rev: string): Promise<string | undefined> {
  try {
    return await withGitReader(root, (reader) => reader.revParse(rev));
  } catch (err) {
    // Not a repository: nothing resolves. No git at all is said as such, not as an unknown revision.
    if (err instanceof GitNotFoundError) throw err;
    return undefined;
  }
}

/** True when `rev` resolves to a commit. */
export async function revExists(root: string, rev: string): Promise<boolean> {
  return (await revParse(root, rev)) !== undefined;
}

/** The full commit id `rev` resolves to; a LockstepError naming the revision if it does not. */
export async function resolveRev(root: string, rev: string): Promise<string> {
  return withGitReader(root, (reader) => reader.resolve(rev));
}

/**
 * The content of `relPath` (relative to `root`) at revision `rev`, read from git objects (no
 * checkout). Undefined when the file does not exist at that revision; an unknown revision throws.
 */
export async function readFileAtRev(root: string, rev: string, relPath: string): Promise<string | undefined> {
  return withGitReader(root, async (reader) => {
    const commit = await reader.resolve(rev);
    return (await reader.fileAt(commit, relPath))?.content.toString('utf8');
  });
}

/**
 * Many files at many commits with one `git cat-file --batch` process: `specs` are
 * `[commit, relPath]` pairs (commits as full ids); the result maps `commit:relPath` to the
 * content, or undefined when the file does not exist there (or is not a blob).
 */
export async function readFilesAtRevs(
  root: string,
  specs: Array<[string, string]>,
): Promise<Map<string, string | undefined>> {
  const keys = [...new Set(specs.map(([c, p]) => `${c}:${p.replace(/^\.\//, '')}`))];
  const out = new Map<string, string | undefined>();
  if (keys.length === 0) return out;
  // One pipelined `git cat-file --batch` (the GitReader every other history reader uses).
  return withGitReader(root, async (reader) => {
    const objects = await Promise.all(keys.map((k) => reader.read(k)));
    keys.forEach((k, i) => {
      const obj = objects[i];
      out.set(k, obj?.type === 'blob' ? obj.content.toString('utf8') : undefined);
    });
    return out;
  });
}

/** Every local branch and tag with its commit, sorted by full ref name. */
export async function listRefs(root: string): Promise<GitRef[]> {
  const text = await git(root).raw([
    'for-each-ref',
    '--format=%(refname)%09%(objectname)%09%(*objectname)',
    'refs/heads',
    'refs/tags',
  ]);
  const refs: GitRef[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [ref, object, peeled] = line.split('\t') as [string, string, string | undefined];
    const kind = ref.startsWith('refs/tags/') ? 'tag' : 'branch';
    const name = ref.replace(/^refs\/(heads|tags)\//, '');
    refs.push({ name, kind, ref, commit: peeled && peeled.trim() ? peeled.trim() : object });
  }
  return refs.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
}

/** The last `n` commits reachable from `rev` (default HEAD), newest first; empty in a repo with no commits. */
export async function recentCommits(root: string, n: number, rev = 'HEAD'): Promise<CommitInfo[]> {
  if (!(await revExists(root, rev))) return [];
  const text = await git(root).raw([
    'log',
    `-n${Math.max(0, Math.floor(n))}`,
    '--format=%H%x09%cI%x09%an%x09%s',
    rev,
  ]);
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [commit, date, author, ...subject] = l.split('\t');
      return { commit: commit!, date: date!, author: author!, subject: subject.join('\t') };
    });
}

/** The commit HEAD points at, or undefined before the first commit. */
export async function currentCommit(root: string): Promise<string | undefined> {
  try {
    return (await git(root).raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'])).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The current branch name, or undefined on a detached HEAD. */
export async function currentBranch(root: string): Promise<string | undefined> {
  try {
    const name = (await git(root).raw(['symbolic-ref', '--quiet', '--short', 'HEAD'])).trim();
    return name || undefined;
  } catch {
    return undefined;
  }
}

/** True when tracked files differ from HEAD or untracked, non-ignored files exist. */
export async function isDirty(root: string): Promise<boolean> {
  const text = await git(root).raw(['status', '--porcelain', '--untracked-files=normal']);
  return text.trim().length > 0;
}

/**
 * True when the repository has replacement objects (`git replace`, under `refs/replace/` or
 * `$GIT_REPLACE_REF_BASE`): git then reads another object's content under an object id, so
 * what an id holds is no longer fixed by the id.
 */
export async function hasReplaceRefs(root: string): Promise<boolean> {
  const base = process.env.GIT_REPLACE_REF_BASE || 'refs/replace/';
  try {
    return (await git(root).raw(['for-each-ref', '--count=1', '--format=%(refname)', base])).trim() !== '';
  } catch {
    return false;
  }
}

/** True in a shallow clone (history cut at a boundary, `git fetch --unshallow` extends it). */
export async function isShallowRepository(root: string): Promise<boolean> {
  try {
    return (await git(root).raw(['rev-parse', '--is-shallow-repository'])).trim() === 'true';
  } catch {
    return false;
  }
}
