/**
 * Tracked paths: validation (inside the repository, no `..`, not in `.git` or `.lockstep`) and
 * the directory walk that lists a tracked directory's files with bigint stats. Symlinks that
 * stay inside the repository are followed (the artifact holds the bytes of what they point at);
 * one that leads out of it is refused, naming the link and its target, so `add` and dep hashing
 * never copy or pin a file from elsewhere on the machine. A symlink loop or a directory cycle is
 * an error rather than an endless walk.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import { UsageError, LockstepError, formatProblem } from '../errors.ts';
import { MAX_DEPTH } from '../entry-limits.ts';

/** Normalises a user-given path (absolute, or relative to `cwd`) to a repository-relative POSIX path. */
export function toRepoPath(repo: Repo, input: string, cwd: string = repo.root): string {
  const abs = path.resolve(cwd, input);
  const rel = path.relative(repo.root, abs);
  return validateRepoPath(repo, rel.split(path.sep).join('/'), input);
}

/**
 * Checks a repository-relative POSIX path: not empty, not absolute, no `..` or `.` segments,
 * not the root, not inside `.git` or `.lockstep`, and (resolving symlinks) still inside the
 * repository. Returns it unchanged.
 */
export function validateRepoPath(repo: Repo, rel: string, shown: string = rel): string {
  const segments = rel.split('/');
  if (
    rel === '' ||
    rel.startsWith('/') ||
    /^[a-zA-Z]:/.test(rel) ||
    segments.some((s) => s === '..' || s === '.' || s === '')
  ) {
    throw new UsageError(
      formatProblem(
        shown,
        'path is outside the repository or goes through ".."',
        rel,
        'Track a path inside the repository, written without "..".',
      ),
    );
  }
  if (segments[0] === '.git' || segments[0] === '.lockstep') {
    throw new UsageError(
      formatProblem(shown, 'path is inside lockstep or git metadata', rel, 'Track a data path instead.'),
    );
  }
  // A symlink on the way may still lead out of the repository. When the path does not exist
  // yet (a checkout about to create it), its nearest existing ancestor decides where it lands.
  let real: string | undefined;
  let probe = rel;
  for (;;) {
    try {
      real = fs.realpathSync(path.join(repo.root, probe));
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw symlinkLoop(rel);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
    }
    if (!probe.includes('/')) break;
    probe = probe.slice(0, probe.lastIndexOf('/'));
  }
  if (real !== undefined) {
    const rootReal = fs.realpathSync(repo.root);
    const inside = path.relative(rootReal, real);
    if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
      throw new UsageError(
        formatProblem(
          shown,
          'path resolves outside the repository',
          real,
          'Track a path inside the repository (a symlink leads out of it).',
        ),
      );
    }
  }
  return rel;
}

export function symlinkLoop(rel: string): LockstepError {
  return new LockstepError(
    formatProblem(rel, 'symlink loop', rel, 'Remove or fix the symlink so it points to a real file.'),
  );
}

export interface WalkedFile {
  /** POSIX path relative to the walked directory. */
  rel: string;
  abs: string;
  /** Absent when the walk ran with `stat: false` (the hasher stats each file as it reads it). */
  stat?: fs.BigIntStats;
}

/**
 * Lists every regular file under `absDir` (following symlinks), sorted by `rel` in code-unit
 * order. `shownDir` names the directory in errors. With `root` (the repository root), a symlink
 * whose target resolves outside it is an error.
 */
export function walkFiles(
  absDir: string,
  shownDir: string,
  options: { stat?: boolean; root?: string } = {},
): WalkedFile[] {
  const withStat = options.stat ?? true;
  const rootReal = options.root === undefined ? undefined : fs.realpathSync(options.root);
  const files: WalkedFile[] = [];
  const ancestors = new Set<string>();
  const visit = (dir: string, prefix: string, dirStat: fs.BigIntStats) => {
    const id = `${dirStat.dev}:${dirStat.ino}`;
    if (ancestors.has(id)) throw symlinkLoop(`${shownDir}/${prefix}`.replace(/\/$/, ''));
    ancestors.add(id);
    // Entries below MAX_DEPTH can never be tracked (the manifest rules refuse them); stopping
    // here also keeps a tree of thousands of levels from ending in a raw ENAMETOOLONG.
    const depth = prefix === '' ? 1 : prefix.split('/').length;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, entry.name);
      const rel = prefix + entry.name;
      if (depth > MAX_DEPTH) {
        throw new LockstepError(
          formatProblem(
            `${shownDir}/${rel}`,
            `file name cannot be tracked (path is nested deeper than ${MAX_DEPTH} levels)`,
            rel,
            'Rename it so its path is portable, or move it out of the directory.',
          ),
        );
      }
      // (A name holding U+FFFD may be one readdir could not decode: the stat below tells.)
      if (!withStat && entry.isFile() && !entry.name.includes('\uFFFD')) {
        files.push({ rel, abs });
        continue;
      }
      let st: fs.BigIntStats;
      try {
        st = fs.statSync(abs, { bigint: true });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ELOOP') throw symlinkLoop(`${shownDir}/${rel}`);
        if (code === 'ENOENT' && entry.isSymbolicLink()) {
          throw new LockstepError(
            formatProblem(`${shownDir}/${rel}`, 'dangling symlink', rel, 'Remove it or point it at a file.'),
          );
        }
        // readdir decodes a name that is not UTF-8 with U+FFFD, a name no file has.
        if (code === 'ENOENT' && entry.name.includes('\uFFFD')) {
          throw new LockstepError(
            formatProblem(
              `${shownDir}/${rel}`,
              'file name cannot be tracked (not valid UTF-8)',
              rel,
              'Rename it to a UTF-8 name, or move it out of the directory.',
            ),
          );
        }
        if (code === 'ENOENT') {
          throw new LockstepError(
            formatProblem(
              `${shownDir}/${rel}`,
              'file disappeared while it was listed',
              rel,
              'Retry when nothing is moving files there.',
            ),
          );
        }
        throw err;
      }
      if (rootReal !== undefined && entry.isSymbolicLink())
        checkLinkInside(rootReal, abs, `${shownDir}/${rel}`);
      if (st.isDirectory()) visit(abs, rel + '/', st);
      else if (st.isFile()) files.push({ rel, abs, stat: st });
      else {
        // A FIFO, socket or device has no bytes to pin; leaving it out silently would make the
        // artifact differ from the directory without a word.
        throw new LockstepError(
          formatProblem(
            `${shownDir}/${rel}`,
            'not a regular file or directory',
            rel,
            'Track files or directories only: move the FIFO, socket or device out of the directory.',
          ),
        );
      }
    }
    ancestors.delete(id);
  };
  visit(absDir, '', fs.statSync(absDir, { bigint: true }));
  files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return files;
}

/** Refuses symlink `abs` (shown as `shown`) when its target resolves outside `rootReal`. */
function checkLinkInside(rootReal: string, abs: string, shown: string): void {
  const target = fs.realpathSync(abs);
  const inside = path.relative(rootReal, target);
  // A link to the root itself stays inside; the walk reports the cycle it makes.
  if (inside.startsWith('..') || path.isAbsolute(inside)) {
    throw new LockstepError(
      formatProblem(
        shown,
        'symlink leads outside the repository',
        `${fs.readlinkSync(abs)} -> ${target}`,
        'Copy the file into the repository or remove the link; lockstep only tracks files inside the repository.',
      ),
    );
  }
}
