/**
 * The status index: what `lockstep status` saw last time, so a status with nothing changed only
 * stats the workspace and compares (as git's index does), without hashing files, reading
 * directory manifests or checking cached objects one by one. Two JSON files in
 * `.lockstep/state/`, each written atomically when it changed:
 *
 * - `status-files.json`, read only when something differs: repository-relative path →
 *   `dev:ino:size:mtimeNs:ctimeNs` and the sha256 seen for
 *   exactly that stat. The ctime is in the key because a write that restores the mtime
 *   (`touch -r`, `utimes`, an editor preserving times) still moves the ctime, which user space
 *   cannot set. A file whose mtime or ctime lies within RACY_MS (one second) of when it was
 *   hashed is not recorded (the same tick could hold a second write), so it is hashed again
 *   next time, as git re-hashes racily clean index entries.
 * - `status.json`, `trees`: tracked path → the artifact hash, its file count, and the sha1 of
 *   every file's path and stat (dev, ino, size, mtime, ctime) in path order, taken before its
 *   bytes were hashed. When a plain stat walk gives the same signature, nothing was added,
 *   removed, renamed or written, and the hash is the recorded one. No signature is kept when
 *   a file was racy or the path holds a symlink (the walk then takes the full path).
 * - `status.json`, `complete`: artifact hashes whose every object (manifest and files) was in the local cache,
 *   with a stamp of the cache's fan-out directories (inode and mtime of `sha256/` and each
 *   `sha256/<2 hex>/`). Adding, deleting or renaming an object changes its directory's mtime, so
 *   while the stamp is unchanged no object came or went and the answer still holds. A stamp with
 *   a directory modified within RACY_MS of when it was read is not kept.
 *
 * A file the index has no entry for (the first status after `lockstep add`) is looked up in the
 * hash state (dev, inode, size, mtime_ns), which is what `add` recorded; from then on the ctime
 * is compared too. A lost or garbled index only costs hashing again. The stat signatures are
 * computed in status-signature.ts.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Oid } from '../types.ts';
import { writeFileAtomic } from '../atomic.ts';
import { LockstepError } from '../errors.ts';
import { loadHashState, statKey } from './hash-state.ts';
import { validateRepoPath, walkFiles, type WalkedFile } from './paths.ts';
import { hasLink, quickSignature, signatureOf } from './status-signature.ts';

interface IndexFile {
  v: 1;
  /** Tracked path → [artifact hash, file count, stat signature]. */
  trees: Record<string, [Oid, number, string]>;
  complete: { stamp: string; hashes: Oid[] };
}

interface FilesFile {
  v: 1;
  files: Record<string, [string, Oid]>;
}

/** What the workspace holds at a tracked path now. */
export type WorkspaceState =
  { kind: 'present'; hash: Oid } | { kind: 'missing' } | { kind: 'unreadable'; problem: string };

/** `dev:ino:size:mtimeNs:ctimeNs` of a bigint stat. */
export function indexKey(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * How recently before it was hashed (or stamped) a file may have changed and still be recorded.
 * A second, as git's "same second as the index" rule: on a file system that keeps whole-second
 * times, a second write within the second of the first leaves mtime and ctime unchanged.
 */
export const RACY_MS = 1000;

/**
 * True when `add`'s hash state (dev, inode, size, mtime; no ctime, a 100 ms racy window) may
 * answer for a file status has no entry for: its ctime equals its mtime, as after a plain write
 * (a write with the mtime put back, or a copy that kept it, leaves the ctime later), and its times
 * are not whole seconds (on a file system with whole-second times, a second write within the
 * second after add hashed would leave the stat unchanged).
 */
export function trustsHashState(st: Pick<fs.BigIntStats, 'mtimeNs' | 'ctimeNs'>): boolean {
  return st.ctimeNs === st.mtimeNs && st.mtimeNs % 1_000_000_000n !== 0n;
}

/** True when `st` was modified (content or inode) within RACY_MS before `atMs`, or after it. */
function isRacy(st: fs.BigIntStats, atMs: number): boolean {
  const latest = st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs;
  return Number(latest / 1_000_000n) > atMs - RACY_MS;
}

const OID = /^[0-9a-f]{64}$/;

function isOid(v: unknown): v is Oid {
  return typeof v === 'string' && OID.test(v);
}

/** `[artifact hash, file count, sha1 signature]`, as `hashNow` writes it. */
function isTreeEntry(v: unknown): v is [Oid, number, string] {
  return (
    Array.isArray(v) &&
    v.length === 3 &&
    isOid(v[0]) &&
    Number.isSafeInteger(v[1]) &&
    (v[1] as number) >= 0 &&
    typeof v[2] === 'string' &&
    /^[0-9a-f]{40}$/.test(v[2])
  );
}

/** `[indexKey, sha256]`, as `record` writes it. */
function isFileEntry(v: unknown): v is [string, Oid] {
  return Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && isOid(v[1]);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    // Missing or unreadable: status hashes what it must and writes a fresh file.
    return undefined;
  }
}

export interface StatusIndexOptions {
  /** The clock the racy rule compares file times with (default `Date.now`; tests move it). */
  now?: () => number;
  /**
   * lstats taken moments ago in this process, by absolute path (the status answer cache's check
   * takes one of every cache fan-out directory): the cache stamp uses a directory's instead of
   * stat'ing it again. Default none.
   */
  seen?: ReadonlyMap<string, fs.BigIntStats>;
}

export class StatusIndex {
  private readonly repo: Repo;
  private readonly now: () => number;
  private readonly seen: ReadonlyMap<string, fs.BigIntStats> | undefined;
  private readonly file: string;
  private readonly filesFile: string;
  private trees: Map<string, [Oid, number, string]>;
  private complete: { stamp: string; hashes: Set<Oid> };
  private filesTable: Map<string, [string, Oid]> | undefined;
  private stamp: string | undefined;
  private dirty = false;
  private filesDirty = false;

  private constructor(repo: Repo, options: StatusIndexOptions) {
    this.repo = repo;
    this.now = options.now ?? Date.now;
    this.seen = options.seen;
    this.file = path.join(repo.stateDir, 'state', 'status.json');
    this.filesFile = path.join(repo.stateDir, 'state', 'status-files.json');
    const body = readJson(this.file) as IndexFile | undefined;
    const ok =
      body?.v === 1 &&
      isRecord(body.trees) &&
      isRecord(body.complete) &&
      typeof body.complete.stamp === 'string' &&
      Array.isArray(body.complete.hashes);
    // Entry by entry: a hand-edited or garbled entry is dropped (and so hashed again), never
    // returned as a hash and never a reason to throw.
    this.trees = new Map(ok ? Object.entries(body.trees).filter(([, t]) => isTreeEntry(t)) : []);
    this.complete = ok
      ? { stamp: body.complete.stamp, hashes: new Set(body.complete.hashes.filter(isOid)) }
      : { stamp: '', hashes: new Set() };
  }

  /** The index of `repo`, read from disk (empty when missing or not the expected shape). */
  static load(repo: Repo, options: StatusIndexOptions = {}): StatusIndex {
    return new StatusIndex(repo, options);
  }

  private get files(): Map<string, [string, Oid]> {
    if (!this.filesTable) {
      const body = readJson(this.filesFile) as FilesFile | undefined;
      const entries = body?.v === 1 && isRecord(body.files) ? Object.entries(body.files) : [];
      this.filesTable = new Map(entries.filter(([, e]) => isFileEntry(e)));
    }
    return this.filesTable;
  }

  /**
   * The artifact hash of what the workspace holds at `rel` now (a file's sha256, or a
   * directory's manifest hash): from stats alone when its signature is unchanged, else hashing
   * only the files whose stat differs from their entry.
   */
  async workspaceHash(rel: string): Promise<WorkspaceState> {
    try {
      validateRepoPath(this.repo, rel);
    } catch (err) {
      // A tracked path swapped for a symlink that leads out is reported, as one that leads
      // out from inside the directory is; the rest of the status still answers.
      if (err instanceof LockstepError) return { kind: 'unreadable', problem: err.message };
      throw err;
    }
    const abs = path.join(this.repo.root, rel);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      throw err;
    }
    const tree = this.trees.get(rel);
    if (tree && (st.isFile() || st.isDirectory())) {
      const quick = quickSignature(abs, st);
      if (quick && quick.sig === tree[2] && quick.n === tree[1]) return { kind: 'present', hash: tree[0] };
    }
    return this.hashNow(rel, abs);
  }

  private async hashNow(rel: string, abs: string): Promise<WorkspaceState> {
    let files: WalkedFile[];
    let dir: boolean;
    try {
      const st = fs.statSync(abs, { bigint: true });
      dir = st.isDirectory();
      if (!dir && !st.isFile()) return { kind: 'unreadable', problem: 'not a regular file or directory' };
      files = dir ? walkFiles(abs, rel, { root: this.repo.root }) : [{ rel: '', abs, stat: st }];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
      if (err instanceof LockstepError) return { kind: 'unreadable', problem: err.message };
      throw err;
    }
    const at = this.now();
    const full = (f: WalkedFile) => (f.rel === '' ? rel : `${rel}/${f.rel}`);
    const table = this.files;
    const oids: Oid[] = new Array(files.length);
    const state = loadHashState(this.repo);
    const toHash: number[] = [];
    let racy = false;
    files.forEach((f, i) => {
      const key = indexKey(f.stat!);
      const hit = table.get(full(f));
      if (Array.isArray(hit) && hit[0] === key && isRacy(f.stat!, at) === false) {
        oids[i] = hit[1];
        return;
      }
      // Only a file never seen here trusts the hash state, and only while its ctime equals its
      // mtime: the hash state keeps no ctime, and a write whose mtime was put back (`touch -d`,
      // `utimes`) or a copy that kept the mtime (`cp -a`) leaves the ctime later than the mtime,
      // whereas a plain write sets both to the same instant. A known file whose ctime moved is read.
      const trustState = hit === undefined && trustsHashState(f.stat!);
      const looked = trustState ? state.lookup(full(f), statKey(f.stat!)) : undefined;
      const oid = isOid(looked) ? looked : undefined;
      if (oid !== undefined) {
        oids[i] = oid;
        racy = this.record(full(f), f.stat!, oid, at) || racy;
      } else toHash.push(i);
    });
    if (toHash.length > 0) {
      let results;
      try {
        // Loaded only when something must be hashed: a no-op status answers from stats alone.
        const { hashFiles } = await import('./hasher.ts');
        results = await hashFiles(toHash.map((i) => ({ path: files[i]!.abs })));
      } catch (err) {
        return { kind: 'unreadable', problem: (err as Error).message };
      }
      results.forEach((r, j) => {
        const f = files[toHash[j]!]!;
        oids[toHash[j]!] = r.oid;
        if (r.key === statKey(f.stat!)) {
          racy = this.record(full(f), f.stat!, r.oid, at) || racy;
          state.record(full(f), r.key, r.oid, at);
        } else racy = true; // changed between the walk and the read: answered, not recorded
      });
      await state.save();
    }
    if (dir) this.prune(rel, new Set(files.map(full)));
    let hash: Oid;
    if (!dir) hash = oids[0]!;
    else {
      const { encodeManifest, sha256Hex } = await import('./manifest.ts');
      try {
        const entries = files.map((f, i) => ({ path: f.rel, sha256: oids[i]!, size: Number(f.stat!.size) }));
        hash = sha256Hex(encodeManifest(entries, rel));
      } catch (err) {
        if (err instanceof LockstepError) return { kind: 'unreadable', problem: err.message };
        throw err;
      }
    }
    const untrusted = racy || files.some((f) => isRacy(f.stat!, at)) || hasLink(abs, dir);
    if (untrusted) {
      if (this.trees.delete(rel)) this.dirty = true;
    } else {
      this.trees.set(rel, [hash, files.length, signatureOf(files, dir)]);
      this.dirty = true;
    }
    return { kind: 'present', hash };
  }

  /** Records `oid` for `rel`; returns true when the file is racy (left unrecorded). */
  private record(rel: string, st: fs.BigIntStats, oid: Oid, atMs: number): boolean {
    if (isRacy(st, atMs) || !OID.test(oid)) {
      if (this.files.delete(rel)) this.filesDirty = true;
      return true;
    }
    const key = indexKey(st);
    const hit = this.files.get(rel);
    if (hit && hit[0] === key && hit[1] === oid) return false;
    this.files.set(rel, [key, oid]);
    this.filesDirty = true;
    return false;
  }

  /** Forgets entries under directory `rel` that are not in `present`. */
  private prune(rel: string, present: Set<string>): void {
    const prefix = rel + '/';
    for (const key of this.files.keys()) {
      if (key.startsWith(prefix) && !present.has(key)) {
        this.files.delete(key);
        this.filesDirty = true;
      }
    }
  }

  /**
   * The stamp of the local cache's fan-out directories now (read once per process), or ''
   * when one of them changed too recently to be trusted (see the module comment).
   */
  private cacheStamp(): string {
    if (this.stamp !== undefined) return this.stamp;
    const at = this.now();
    const objects = path.join(this.repo.cacheDir, 'sha256');
    const parts: string[] = [];
    let racy = false;
    const add = (name: string, abs: string) => {
      // An lstat of a directory is its stat (a symlink's is not: that one is stat'ed).
      const known = this.seen?.get(abs);
      const st = known?.isDirectory() ? known : fs.statSync(abs, { bigint: true });
      if (isRacy(st, at)) racy = true;
      parts.push(`${name}:${st.dev}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`);
    };
    try {
      add('.', objects);
      for (const name of fs.readdirSync(objects).sort()) add(name, path.join(objects, name));
    } catch {
      racy = true;
    }
    this.stamp = racy ? '' : createHash('sha1').update(parts.join('\n')).digest('hex');
    return this.stamp;
  }

  /** True when every object of the artifact `ref` was in the cache and no object came or went since. */
  isComplete(ref: Pick<ArtifactRef, 'hash'>): boolean {
    const stamp = this.cacheStamp();
    return stamp !== '' && stamp === this.complete.stamp && this.complete.hashes.has(ref.hash);
  }

  /** Records that every object of `ref` is in the cache now (kept only under a trusted stamp). */
  markComplete(ref: Pick<ArtifactRef, 'hash'>): void {
    const stamp = this.cacheStamp();
    if (stamp === '') return;
    if (this.complete.stamp !== stamp) this.complete = { stamp, hashes: new Set() };
    if (this.complete.hashes.has(ref.hash)) return;
    this.complete.hashes.add(ref.hash);
    this.dirty = true;
  }

  /** Writes what changed (temp + rename, no fsync: a lost index only costs hashing again). */
  async save(): Promise<void> {
    try {
      // The per-file table first: a tree is only ever trusted beside the entries it came from.
      if (this.filesDirty && this.filesTable) {
        const body: FilesFile = { v: 1, files: Object.fromEntries(this.filesTable) };
        await writeFileAtomic(this.filesFile, JSON.stringify(body), { sync: false });
        this.filesDirty = false;
      }
      if (this.dirty) {
        const body: IndexFile = {
          v: 1,
          trees: Object.fromEntries(this.trees),
          complete: { stamp: this.complete.stamp, hashes: [...this.complete.hashes] },
        };
        await writeFileAtomic(this.file, JSON.stringify(body), { sync: false });
        this.dirty = false;
      }
    } catch {
      // A read-only checkout still answers; it only hashes again next time.
    }
  }
}
