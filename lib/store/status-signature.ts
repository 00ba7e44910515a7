/**
 * Stat signatures for the status index (status-index.ts): the sha1 of every file's path and stat
 * (dev, ino, size, mtime, ctime) under a tracked path, in depth-first name order. A plain stat
 * walk (`quickSignature`) and the full walk's bigint stats (`signatureOf`) give the same value
 * for the same files, so an unchanged signature means nothing was added, removed, renamed or
 * written since the full walk.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MAX_DEPTH } from '../entry-limits.ts';
import type { WalkedFile } from './paths.ts';

/** Milliseconds as `fs.Stats` gives them (`sec * 1e3 + nsec / 1e6`), from bigint nanoseconds. */
function msOf(ns: bigint): number {
  return Number(ns / 1_000_000_000n) * 1e3 + Number(ns % 1_000_000_000n) / 1e6;
}

/** One file's line of a stat signature, from a plain stat. */
function statLine(rel: string, st: fs.Stats): string {
  return `${rel}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}\n`;
}

/** The same line from a bigint stat (equal to `statLine` of a plain stat of the same file). */
function statLineBig(rel: string, st: fs.BigIntStats): string {
  return `${rel}\0${st.dev}:${st.ino}:${st.size}:${msOf(st.mtimeNs)}:${msOf(st.ctimeNs)}\n`;
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The stat signature of `abs` by a plain walk (sorted, regular files only), or undefined when
 * the walk meets anything the full walk treats specially (a symlink, a special file, a name
 * readdir could not decode, a path deeper than the manifest rules allow).
 */
export function quickSignature(abs: string, st: fs.Stats): { sig: string; n: number } | undefined {
  const hash = createHash('sha1');
  if (st.isFile()) {
    hash.update(statLine('', st));
    return { sig: hash.digest('hex'), n: 1 };
  }
  let n = 0;
  const visit = (dir: string, prefix: string, depth: number): boolean => {
    if (depth > MAX_DEPTH) return false;
    const names = fs.readdirSync(dir, { withFileTypes: true });
    names.sort((a, b) => compareCodeUnits(a.name, b.name));
    // Files and directories are visited in name order, as the full walk's final sort orders
    // paths only when no name is a prefix of a sibling followed by a byte below "/"; the
    // signature is compared with itself, so any fixed order works.
    for (const e of names) {
      if (e.name.includes('\uFFFD')) return false;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!visit(p, `${prefix}${e.name}/`, depth + 1)) return false;
      } else if (e.isFile()) {
        hash.update(statLine(prefix + e.name, fs.statSync(p)));
        n++;
      } else return false;
    }
    return true;
  };
  return visit(abs, '', 1) ? { sig: hash.digest('hex'), n } : undefined;
}

/** The signature `quickSignature` gives for `files` (sorted by path) as stat'ed by the full walk. */
export function signatureOf(files: WalkedFile[], dir: boolean): string {
  const hash = createHash('sha1');
  if (!dir) hash.update(statLineBig('', files[0]!.stat!));
  else {
    // quickSignature visits names depth-first in sorted order per directory: the same order.
    const sorted = [...files].sort((a, b) => compareTreeOrder(a.rel, b.rel));
    for (const f of sorted) hash.update(statLineBig(f.rel, f.stat!));
  }
  return hash.digest('hex');
}

/** Depth-first, names sorted per directory: compare segment by segment. */
function compareTreeOrder(a: string, b: string): number {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const c = compareCodeUnits(x[i]!, y[i]!);
    if (c !== 0) return c;
  }
  return x.length - y.length;
}

/** True when the walk of `abs` would meet a symlink (the quick walk never matches those). */
export function hasLink(abs: string, dir: boolean): boolean {
  if (!dir) return fs.lstatSync(abs).isSymbolicLink();
  try {
    return quickSignature(abs, fs.statSync(abs)) === undefined;
  } catch {
    return true;
  }
}
