/**
 * A lockfile git could not merge (no merge driver installed): read its three versions, merge them
 * entry by entry (lib/lockfile-merge.ts), and, for `lockstep lock resolve`, write the result.
 * The versions come from git's index stages :1 (base), :2 (ours) and :3 (theirs) while the merge
 * is in progress; once those are gone (the markers were committed, or `git add`ed) they are cut
 * out of the conflict markers in the file itself.
 */
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Repo } from './repo.ts';
import type { Lockfile } from './types.ts';
import { ConfigError, GitNotFoundError, LockfileConflictError, isGitNotFound } from './errors.ts';
import { requireGit } from './git.ts';
import { conflictMarkerLine, emptyLockfile, parseLockfile, writeLockfile } from './lockfile.ts';
import { mergeLockfiles, type LockfileMerge } from './lockfile-merge.ts';

const run = promisify(execFile);
const LOCKFILE = 'artifacts.lock.yaml';

/** The three sides of a conflicted lockfile as text; `base` undefined when it is unknown. */
export interface ConflictSides {
  base?: string;
  ours: string;
  theirs: string;
  /** Where the sides came from. */
  from: 'index' | 'markers';
}

/**
 * Splits text holding git conflict markers into its two sides (and the base, for diff3-style
 * markers). Text outside the conflicts belongs to every side.
 */
export function splitConflictMarkers(text: string): { base?: string; ours: string; theirs: string } {
  const sides = { base: [] as string[], ours: [] as string[], theirs: [] as string[] };
  let hasBase = false;
  let state: 'common' | 'ours' | 'base' | 'theirs' = 'common';
  for (const line of text.split(/(?<=\n)/)) {
    if (/^<{7}(?: |\r?\n|$)/.test(line) && state === 'common') state = 'ours';
    else if (/^\|{7}(?: |\r?\n|$)/.test(line) && state === 'ours') {
      state = 'base';
      hasBase = true;
    } else if (/^={7}\r?\n?$/.test(line) && (state === 'ours' || state === 'base')) state = 'theirs';
    else if (/^>{7}(?: |\r?\n|$)/.test(line) && state === 'theirs') state = 'common';
    else if (state === 'common') {
      sides.base.push(line);
      sides.ours.push(line);
      sides.theirs.push(line);
    } else sides[state].push(line);
  }
  return {
    ...(hasBase ? { base: sides.base.join('') } : {}),
    ours: sides.ours.join(''),
    theirs: sides.theirs.join(''),
  };
}

async function indexStage(root: string, stage: 1 | 2 | 3): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['show', `:${stage}:./${LOCKFILE}`], {
      cwd: root,
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    // A git that exited non-zero answered: no such stage. One that did not start (gone since
    // requireGit, or not executable) answered nothing, and the markers must not be taken instead.
    if (typeof (err as NodeJS.ErrnoException).code === 'string')
      throw isGitNotFound(err) && fs.existsSync(root) ? new GitNotFoundError({ cause: err }) : err;
    return undefined;
  }
}

/** The sides of the conflicted lockfile: git's index stages if the merge is unfinished, else the markers. */
export async function readConflictSides(repo: Repo, text: string): Promise<ConflictSides> {
  const [base, ours, theirs] = await Promise.all([1, 2, 3].map((n) => indexStage(repo.root, n as 1 | 2 | 3)));
  if (ours !== undefined && theirs !== undefined) return { base: base ?? '', ours, theirs, from: 'index' };
  return { ...splitConflictMarkers(text), from: 'markers' };
}

function parseSide(text: string, side: string): Lockfile {
  if (text.trim() === '') return emptyLockfile();
  return parseLockfile(text, `${LOCKFILE} (${side})`);
}

/**
 * Merges the sides of a conflicted lockfile; undefined when there is no conflict (no markers and
 * the file is not unmerged in git's index).
 */
export async function mergeConflictedLockfile(
  repo: Repo,
): Promise<(LockfileMerge & { from: ConflictSides['from'] }) | undefined> {
  let text: string;
  try {
    text = fs.readFileSync(repo.lockfilePath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let sides: ConflictSides;
  if (conflictMarkerLine(text) === undefined) {
    // No markers, yet git may still hold the file unmerged: a merge driver that failed to start
    // (a worktree without node_modules) leaves our side in place and the three versions in the index.
    const fromIndex = await readConflictSides(repo, '');
    if (fromIndex.from !== 'index') return undefined;
    sides = fromIndex;
  } else sides = await readConflictSides(repo, text);
  // A side that still holds markers (a conflict committed and merged again) cannot be split here.
  for (const [side, t] of Object.entries(sides)) {
    if (side !== 'from' && typeof t === 'string' && conflictMarkerLine(t) !== undefined) {
      throw new ConfigError(
        `${LOCKFILE}: the ${side} side of the conflict holds conflict markers itself. Take one side with "git checkout --ours ${LOCKFILE}" and run "npx lockstep repro".`,
      );
    }
  }
  const base = sides.base === undefined ? undefined : parseSide(sides.base, 'base');
  const merged = mergeLockfiles(base, parseSide(sides.ours, 'ours'), parseSide(sides.theirs, 'theirs'));
  return { ...merged, from: sides.from };
}

export interface ResolveResult extends LockfileMerge {
  /** False when the lockfile had no conflict markers (nothing was written). */
  resolved: boolean;
  /** True when the file was staged with `git add` (no data conflict left). */
  staged: boolean;
}

/**
 * `lockstep lock resolve`: replaces a conflicted lockfile with the per-entry merge of its sides
 * and stages it (`git add`) unless tracked data changed on both sides.
 */
export async function resolveLockfileConflict(repo: Repo): Promise<ResolveResult> {
  // Without git the sides in the index cannot be read nor the merge staged: nothing is written.
  await requireGit(repo.root);
  const merge = await mergeConflictedLockfile(repo);
  if (!merge) {
    // Still unmerged in git's index without both sides: deleted on one side, changed on the other.
    const [ours, theirs, base] = await Promise.all(
      [2, 3, 1].map((n) => indexStage(repo.root, n as 1 | 2 | 3)),
    );
    if (base !== undefined || ours !== undefined || theirs !== undefined) {
      const deleted = ours === undefined ? 'our' : 'their';
      throw new LockfileConflictError(
        `${LOCKFILE}: deleted on ${deleted} side of the merge and changed on the other, so there is nothing to merge per stage. Keep the changed one with "git add ${LOCKFILE}" and run "npx lockstep repro", or drop it with "git rm ${LOCKFILE}".`,
      );
    }
    return { lockfile: emptyLockfile(), dropped: [], dataConflicts: [], resolved: false, staged: false };
  }
  const conflicted = fs.readFileSync(repo.lockfilePath);
  await writeLockfile(repo, merge.lockfile);
  let staged = false;
  if (merge.dataConflicts.length === 0) {
    try {
      await run('git', ['add', '--', `./${LOCKFILE}`], { cwd: repo.root });
    } catch (err) {
      // Not staged (git gone since the sides were read, the index locked): the conflicted file is
      // put back, so the command left nothing half done and can simply be run again.
      fs.writeFileSync(repo.lockfilePath, conflicted);
      throw err;
    }
    staged = true;
  }
  return {
    lockfile: merge.lockfile,
    dropped: merge.dropped,
    dataConflicts: merge.dataConflicts,
    resolved: true,
    staged,
  };
}

/** Human lines for what a merge left stale or unresolved. */
export function formatMergeOutcome(merge: Pick<LockfileMerge, 'dropped' | 'dataConflicts'>): string[] {
  const lines: string[] = [];
  if (merge.dropped.length === 0) lines.push('no stage became stale');
  else {
    lines.push('stale (lockstep repro recomputes them):');
    for (const d of merge.dropped) lines.push(`  ${d.stage}: ${d.reason}`);
  }
  for (const c of merge.dataConflicts) {
    lines.push(
      `${LOCKFILE}: data ${c.path} changed on both sides. Put the bytes you want at ${c.path}, run "npx lockstep add ${c.path}", then "git add ${LOCKFILE}".`,
    );
  }
  return lines;
}
