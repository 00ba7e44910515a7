/**
 * Safe relative paths: the one set of rules for every path that lockstep reads from somewhere it
 * does not control and then joins onto a directory (directory manifest entries, object names
 * under a gs:// prefix, lockfile and run-cache paths). A path is POSIX, relative, made of
 * non-empty segments other than `.` and `..`, with no backslash, no control character and no
 * broken Unicode; a set of paths has no duplicates, no path that is both a file and a directory
 * of another, and no two paths that differ only by case or Unicode normalization (they would
 * land on one file on macOS and Windows). Parsing returns the `EntryPath` brand, so code that
 * writes files can demand a path that went through these checks.
 */
import path from 'node:path';
import { z } from 'zod';
import { UnsafePathError, formatProblem } from './errors.ts';

/** A relative path that passed `entryPathProblem`. */
export type EntryPath = string & z.$brand<'EntryPath'>;

import { MAX_DEPTH, MAX_PATH_BYTES, MAX_SEGMENT_BYTES } from './entry-limits.ts';

export { MAX_DEPTH, MAX_PATH_BYTES, MAX_SEGMENT_BYTES };

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `p` is not a safe relative path, or undefined when it is. */
export function entryPathProblem(p: string): string | undefined {
  if (p === '') return 'empty path';
  if (LONE_SURROGATE.test(p)) return 'path is not valid Unicode';
  if (CONTROL.test(p)) return 'path contains a NUL or control character';
  if (p.includes('\\')) return 'path contains a backslash';
  if (p.startsWith('/') || /^[a-zA-Z]:/.test(p)) return 'path is absolute';
  const segments = p.split('/');
  if (segments.some((s) => s === '..')) return 'path climbs out with ".."';
  if (segments.some((s) => s === '.' || s === '')) return 'path has an empty or "." segment';
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) return `path is longer than ${MAX_PATH_BYTES} bytes`;
  if (segments.some((s) => Buffer.byteLength(s) > MAX_SEGMENT_BYTES))
    return `path has a segment longer than ${MAX_SEGMENT_BYTES} bytes`;
  if (segments.length > MAX_DEPTH) return `path is nested deeper than ${MAX_DEPTH} levels`;
  return undefined;
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\u0000-\u007f]*$/;

/** The form two paths share when a case-insensitive or normalizing filesystem treats them as one. */
function foldPath(p: string): string {
  // ASCII is already NFC, and lower-casing it keeps every index (ancestors are slices of it).
  return ASCII.test(p) ? p.toLowerCase() : p.normalize('NFC').toLowerCase();
}

/** The first problem of a set of safe paths, with the index of the path at fault. */
export function pathSetProblem(paths: readonly string[]): { index: number; problem: string } | undefined {
  const folded = paths.map(foldPath);
  const files = new Map<string, string>();
  folded.forEach((f, i) => {
    if (!files.has(f)) files.set(f, paths[i]!);
  });
  const seen = new Map<string, string>();
  const dirs = new Map<string, string>();
  // Directories already checked, as spelled: their ancestors were checked with them.
  const checked = new Set<string>();
  for (let index = 0; index < paths.length; index++) {
    const p = paths[index]!;
    const f = folded[index]!;
    const before = seen.get(f);
    if (before !== undefined) {
      return {
        index,
        problem:
          before === p
            ? 'duplicate path'
            : `path differs from "${before}" only by case or Unicode normalization`,
      };
    }
    seen.set(f, p);
    // Every ancestor must be a directory: not a file of the set, and spelled one way only.
    const sliceable = f.length === p.length && ASCII.test(p);
    for (let cut = p.lastIndexOf('/'); cut > 0; cut = p.lastIndexOf('/', cut - 1)) {
      const dir = p.slice(0, cut);
      if (checked.has(dir)) break;
      checked.add(dir);
      const foldedDir = sliceable ? f.slice(0, cut) : foldPath(dir);
      const file = files.get(foldedDir);
      if (file !== undefined) return { index, problem: `path is inside "${file}", which is a file` };
      const spelled = dirs.get(foldedDir);
      if (spelled === undefined) dirs.set(foldedDir, dir);
      else if (spelled !== dir) {
        return {
          index,
          problem: `directory "${dir}" differs from "${spelled}" only by case or Unicode normalization`,
        };
      }
    }
  }
  return undefined;
}

/** Schema of one safe relative path, for files whose types keep plain strings (the lockfile). */
export const safePathSchema = z
  .string()
  .min(1)
  .superRefine((p, ctx) => {
    const problem = entryPathProblem(p);
    if (problem) ctx.addIssue({ code: 'custom', message: `unsafe path (${problem})`, input: p });
  })
  .meta({
    description:
      'Relative POSIX path: no leading "/", no "..", "." or empty segments, no backslash or control characters.',
  });

/** Schema of one safe relative path; the brand marks values that passed it. */
export const entryPathSchema = safePathSchema.brand<'EntryPath'>();

/**
 * Parses one untrusted relative path (e.g. an object name under a gs:// prefix).
 * @throws IntegrityError naming `where` and the path.
 */
export function parseEntryPath(p: string, where: string): EntryPath {
  const problem = entryPathProblem(p);
  if (problem) throw unsafePath(where, problem, p);
  return p as EntryPath;
}

/**
 * Parses a set of untrusted relative paths (each safe, and the set free of clashes).
 * @throws IntegrityError naming `where` and the first path at fault.
 */
export function parseEntryPaths(paths: readonly string[], where: string): EntryPath[] {
  for (const p of paths) parseEntryPath(p, where);
  const clash = pathSetProblem(paths);
  if (clash) throw unsafePath(where, clash.problem, paths[clash.index]!);
  return paths as EntryPath[];
}

/** The error for an untrusted path that fails the rules; `subject` says what held it. */
export function unsafePath(where: string, problem: string, value: string, subject = 'path'): UnsafePathError {
  return new UnsafePathError(
    formatProblem(
      where,
      `unsafe ${subject} (${problem})`,
      value,
      'Nothing was written. The object was made by hand or tampered with: delete it and re-add or re-push from a good copy.',
    ),
  );
}

/**
 * The absolute target of safe path `rel` under `root`, checked once more after joining: it must
 * stay strictly inside `root` (defence in depth behind the parse-time checks).
 */
export function targetInside(root: string, rel: EntryPath, where: string): string {
  const target = path.join(root, ...rel.split('/'));
  const inside = path.relative(root, target);
  if (inside === '' || inside.startsWith('..') || path.isAbsolute(inside)) {
    throw unsafePath(where, 'path leaves the directory it is written into', rel);
  }
  return target;
}
