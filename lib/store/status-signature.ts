/**
 * Stat signatures for the status index (status-index.ts): the sha1 of every file's path and stat
 * (dev, ino, size, mtime, ctime) under a tracked path, in depth-first name order (SignatureHash
 * says how they are laid out). A plain stat walk (`quickSignature`) and the full walk's bigint
 * stats (`signatureOf`) give the same value for the same files, so an unchanged signature means
 * nothing was added, removed, renamed or written since the full walk.
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

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Files per block a signature hashes at once (bounds its memory on a huge tree). */
const BLOCK = 1024;
const FIELDS = 5;

/**
 * A signature being computed: each block of BLOCK files is hashed as their stat numbers (dev,
 * ino, size, mtime and ctime in milliseconds, as float64, the values `fs.Stats` holds) followed
 * by their paths, each ended by NUL. Numbers go in as bytes and the hash is fed once per block:
 * formatting five numbers per file as text, or one hash call per file, costs a no-op status
 * more than the stat walk itself.
 */
class SignatureHash {
  private readonly hash = createHash('sha1');
  private readonly numbers = new Float64Array(BLOCK * FIELDS);
  private names: string[] = [];
  /** Files added so far. */
  count = 0;

  add(rel: string, dev: number, ino: number, size: number, mtimeMs: number, ctimeMs: number): void {
    const at = this.names.length * FIELDS;
    this.numbers[at] = dev;
    this.numbers[at + 1] = ino;
    this.numbers[at + 2] = size;
    this.numbers[at + 3] = mtimeMs;
    this.numbers[at + 4] = ctimeMs;
    this.names.push(rel);
    this.count++;
    if (this.names.length === BLOCK) this.flush();
  }

  private flush(): void {
    if (this.names.length === 0) return;
    this.hash.update(new Uint8Array(this.numbers.buffer, 0, this.names.length * FIELDS * 8));
    this.hash.update(this.names.join('\0') + '\0');
    this.names = [];
  }

  digest(): string {
    this.flush();
    return this.hash.digest('hex');
  }
}

/**
 * The stat signature of `abs` by a plain walk (sorted, regular files only), or undefined when
 * the walk meets anything the full walk treats specially (a symlink, a special file, a name
 * readdir could not decode, a path deeper than the manifest rules allow) or a file or directory
 * that is gone (or no longer a directory) by the time it is stat'ed or listed.
 */
export function quickSignature(abs: string, st: fs.Stats): { sig: string; n: number } | undefined {
  const sig = new SignatureHash();
  if (st.isFile()) {
    sig.add('', st.dev, st.ino, st.size, st.mtimeMs, st.ctimeMs);
    return { sig: sig.digest(), n: 1 };
  }
  const visit = (dir: string, prefix: string, depth: number): boolean => {
    if (depth > MAX_DEPTH) return false;
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(dir, { withFileTypes: true });
    } catch (err) {
      // A directory removed, or replaced by a file, since its parent was listed: the full walk
      // sees what is there now.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return false;
      throw err;
    }
    names.sort((a, b) => compareCodeUnits(a.name, b.name));
    // Files and directories are visited in name order, as the full walk's final sort orders
    // paths only when no name is a prefix of a sibling followed by a byte below "/"; the
    // signature is compared with itself, so any fixed order works.
    for (const e of names) {
      if (e.name.includes('\uFFFD')) return false;
      // `dir` is normalized (no trailing separator): a join would only normalize it again.
      const p = dir + path.sep + e.name;
      if (e.isDirectory()) {
        if (!visit(p, `${prefix}${e.name}/`, depth + 1)) return false;
      } else if (e.isFile()) {
        const f = fs.statSync(p, { throwIfNoEntry: false });
        if (f === undefined) return false;
        sig.add(prefix + e.name, f.dev, f.ino, f.size, f.mtimeMs, f.ctimeMs);
      } else return false;
    }
    return true;
  };
  return visit(abs, '', 1) ? { sig: sig.digest(), n: sig.count } : undefined;
}

/** The signature `quickSignature` gives for `files` (sorted by path) as stat'ed by the full walk. */
export function signatureOf(files: WalkedFile[], dir: boolean): string {
  const sig = new SignatureHash();
  const add = (rel: string, st: fs.BigIntStats) =>
    sig.add(rel, Number(st.dev), Number(st.ino), Number(st.size), msOf(st.mtimeNs), msOf(st.ctimeNs));
  if (!dir) add('', files[0]!.stat!);
  else {
    // quickSignature visits names depth-first in sorted order per directory: the same order.
    const sorted = [...files].sort((a, b) => compareTreeOrder(a.rel, b.rel));
    for (const f of sorted) add(f.rel, f.stat!);
  }
  return sig.digest();
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
