/**
 * The history of one file as a stream: every commit that changed it, newest first, with the blob
 * id the commit left it at, from one `git log --raw` process. Reading the blobs is the caller's
 * business (a {@link GitReader} reads any number of them through one more process), so walking a
 * history of ten thousand commits costs two processes, not ten thousand.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LockstepError } from './errors.ts';
import type { GitReader } from './git-reader.ts';

/** One commit that changed the file. */
export interface FileChange {
  commit: string;
  /** Parent commit ids, first parent first. */
  parents: string[];
  /** Commit time, ISO 8601. */
  date: string;
  author: string;
  subject: string;
  /** Blob id of the file after this commit; undefined when the commit deleted it. */
  blob?: string;
}

export interface FileHistoryOptions {
  /** Revisions to walk (default: every ref, `--all`). */
  revs?: string[];
  /** Follow only first parents: the history of a branch as it moved (default false). */
  firstParent?: boolean;
  /** Only commits newer than this (`git log --since`: an ISO date or `2 weeks ago`). */
  since?: string;
  /**
   * Reads the blob id of commits git prints no diff for (merges, when the first-parent diff is
   * not shown); without it such commits come with the blob undefined.
   */
  reader?: GitReader;
}

const SEP = '\x1f';
const NULL_OID = /^0+$/;
const RAW = /^:\d+ \d+ [0-9a-f]+ ([0-9a-f]+) ([A-Z])\d*\t/;

/**
 * Commits that changed `file` (repository-relative), newest first. Stops git as soon as the
 * caller stops iterating, so taking the first few entries of a long history is cheap.
 * @throws LockstepError when git fails (not a repository, an unknown revision).
 */
export async function* fileHistory(
  root: string,
  file: string,
  options: FileHistoryOptions = {},
): AsyncGenerator<FileChange> {
  const args = ['log', `--format=%x00%H${SEP}%P${SEP}%cI${SEP}%an${SEP}%s`, '--raw', '--no-abbrev', '--root'];
  if (options.firstParent) args.push('--first-parent');
  if (options.since) args.push(`--since=${options.since}`);
  args.push(...(options.revs ?? ['--all']), '--', file);
  const child = spawn('git', args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-2000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => {});
  let current: FileChange | undefined;
  let hasRaw = false;
  const finish = async (change: FileChange): Promise<FileChange> => {
    if (!hasRaw && options.reader) change.blob = (await options.reader.fileAt(change.commit, file))?.oid;
    return change;
  };
  let done = false;
  try {
    for await (const line of createInterface({ input: child.stdout, crlfDelay: Infinity })) {
      if (line.startsWith('\0')) {
        if (current) yield await finish(current);
        const [commit, parents, date, author, ...subject] = line.slice(1).split(SEP);
        current = {
          commit: commit!,
          parents: parents ? parents.split(' ') : [],
          date: date!,
          author: author!,
          subject: subject.join(SEP),
        };
        hasRaw = false;
        continue;
      }
      const m = current && !hasRaw ? RAW.exec(line) : null;
      if (m && current) {
        hasRaw = true;
        current.blob = m[2] === 'D' || NULL_OID.test(m[1]!) ? undefined : m[1];
      }
    }
    if (current) yield await finish(current);
    const code = await exited;
    if (code !== 0) {
      const why = stderr.trim().split('\n')[0] || `git log exited with code ${code}`;
      throw new LockstepError(`${file}: cannot read its history (${why}). Check the revisions named.`);
    }
    done = true;
  } finally {
    // The caller stopped early (or we failed): stop git rather than let it walk the rest.
    if (!done && child.exitCode === null) child.kill();
  }
}
