/**
 * Artifacts: a tracked file or directory as an `ArtifactRef`. Hashing goes through the hash
 * state (unchanged files are never re-read) and the parallel hasher; committing also inserts
 * every file and the directory manifest into the cache in the same pass over the bytes.
 * Checking an artifact out of the cache is in checkout.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Lockfile, ManifestEntry, Oid } from '../types.ts';
import type { Output } from '../output.ts';
import { LockstepError, formatProblem } from '../errors.ts';
import { Cache, fsyncFile } from './cache.ts';
import { hashFiles, HashTaskError, type HashOneResult, type HashTask } from './hasher.ts';
import { loadHashState, statKey } from './hash-state.ts';
import {
  decodeManifest,
  encodeManifest,
  sha256Hex as createHashHex,
  type DecodedManifest,
} from './manifest.ts';
import { symlinkLoop, validateRepoPath, walkFiles, type WalkedFile } from './paths.ts';
import { takeWriteFault } from './fault.ts';
import type { CacheLink } from '../config.ts';

export interface HashOptions {
  /** Progress and warnings (stderr). */
  out?: Output;
  signal?: AbortSignal;
  /** Cache to insert into (commitArtifact); default: a cache on `repo`. */
  cache?: Cache;
  /** How new objects get their bytes (commitArtifact; default `copy`, see cache-type.ts). */
  link?: CacheLink;
  /** With `link`: a file it cannot be made for (another file system) is copied instead. */
  linkFallback?: boolean;
  /** What the path was last recorded as (commitArtifact): finds objects edited in place. */
  previous?: ArtifactRef;
}

/** New objects of at least this many bytes are fsynced as soon as they are written. */
const SYNC_AT_ONCE_BYTES = 16 << 20;

interface Scan {
  rel: string;
  abs: string;
  dir: boolean;
  /** For a file: one entry with `rel` ''. */
  files: WalkedFile[];
}

/**
 * Stats and lists `rel`. `stat: false` skips per-file stats in a directory (used when the hash
 * state knows nothing under it, so every file is read anyway and the hasher stats it then).
 */
function scanPath(repo: Repo, rel: string, options: { stat?: boolean } = {}): Scan {
  validateRepoPath(repo, rel);
  const abs = path.join(repo.root, rel);
  let st: fs.BigIntStats;
  try {
    st = fs.statSync(abs, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw symlinkLoop(rel);
    if (code === 'ENOENT') {
      throw new LockstepError(
        formatProblem(rel, 'path does not exist', rel, 'Create it or check the spelling.'),
      );
    }
    throw err;
  }
  if (st.isDirectory())
    return { rel, abs, dir: true, files: walkFiles(abs, rel, { ...options, root: repo.root }) };
  if (st.isFile()) return { rel, abs, dir: false, files: [{ rel: '', abs, stat: st }] };
  throw new LockstepError(
    formatProblem(rel, 'not a regular file or directory', rel, 'Track files or directories only.'),
  );
}

function stateRel(scan: Scan, file: WalkedFile): string {
  return file.rel === '' ? scan.rel : `${scan.rel}/${file.rel}`;
}

function hashError(scan: Scan, err: unknown): unknown {
  if (!(err instanceof HashTaskError)) return err;
  const where = path.relative(path.dirname(scan.abs), err.task.path).split(path.sep).join('/');
  const shown = path.posix.join(path.posix.dirname(scan.rel), where);
  if (err.code === 'ECHANGED') {
    return new LockstepError(
      formatProblem(shown, 'file changed while it was hashed', shown, 'Retry when nothing is writing to it.'),
    );
  }
  if (err.code === 'ENOENT') {
    // Listed, then gone before it was read: something is moving files in the directory.
    return new LockstepError(
      formatProblem(
        shown,
        'file disappeared while it was hashed',
        shown,
        'Retry when nothing is moving files there.',
      ),
    );
  }
  if (err.code === 'EXDEV') {
    return new LockstepError(
      formatProblem(
        shown,
        'cannot link it into the cache from another file system (cache.type)',
        shown,
        'Add copy to cache.type in .lockstep/config.yaml (e.g. [hardlink, copy]).',
      ),
    );
  }
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') {
    return new LockstepError(
      formatProblem(
        '.lockstep/cache',
        err.code === 'ENOSPC' ? 'no space left on device while writing' : 'disk quota exceeded while writing',
        shown,
        'Free disk space (lockstep gc) and retry.',
      ),
    );
  }
  if (err.writing) {
    // The file was read; copying it into the cache failed (an I/O error on the cache's disk).
    return new LockstepError(
      formatProblem(
        '.lockstep/cache',
        `cannot write the cache copy (${err.code})`,
        shown,
        'Check the disk holding .lockstep/cache and retry.',
      ),
    );
  }
  return new LockstepError(
    formatProblem(shown, `cannot read file (${err.code})`, err.message, 'Check its permissions.'),
  );
}

/**
 * Resolves every file of `scan` to its oid: hash-state hits are trusted, misses are hashed in
 * parallel. With `cache`, misses and hits whose object is absent are copied into the cache.
 */
async function resolveEntries(
  repo: Repo,
  scan: Scan,
  cache: Cache | undefined,
  options: HashOptions,
): Promise<ManifestEntry[]> {
  const state = loadHashState(repo);
  const entries: ManifestEntry[] = new Array(scan.files.length);
  const tasks: HashTask[] = [];
  const taskIndex: number[] = [];
  const sizes: number[] = [];
  scan.files.forEach((f, i) => {
    const oid = f.stat && state.lookup(stateRel(scan, f), statKey(f.stat));
    if (oid !== undefined && f.stat && (!cache || cache.hasSync(oid))) {
      entries[i] = { path: f.rel, sha256: oid, size: Number(f.stat.size) };
      return;
    }
    tasks.push(
      cache
        ? {
            path: f.abs,
            dest: cache.tempPath(),
            objects: cache.objectsDir,
            mode: 0o444,
            fault: takeWriteFault(),
            ...(options.link && options.link !== 'copy'
              ? { link: options.link, fallbackCopy: options.linkFallback ?? false }
              : {}),
          }
        : { path: f.abs },
    );
    taskIndex.push(i);
    sizes.push(Number(f.stat?.size ?? 0));
  });
  if (tasks.length > 0) {
    const hashedAt = Date.now();
    // A large temp is fsynced on the thread pool as soon as it is written, so its write-back
    // overlaps the hashing of the files after it; small ones are left to one sync at the end.
    const syncing = new Map<number, Promise<void>>();
    const onResult = (j: number, r: HashOneResult) => {
      if (cache?.durable && !r.existed && r.size >= SYNC_AT_ONCE_BYTES)
        syncing.set(j, fsyncFile(tasks[j]!.dest!));
    };
    let results;
    try {
      results = await hashFiles(tasks, {
        out: options.out,
        signal: options.signal,
        sizes: scan.files.every((f) => f.stat) ? sizes : undefined,
        label: tasks.length >= 200 ? `hashing ${scan.rel}` : undefined,
        onResult,
      });
      await Promise.all(syncing.values());
    } catch (err) {
      await Promise.allSettled(syncing.values());
      for (const t of tasks) if (t.dest) fs.rmSync(t.dest, { force: true });
      await state.save();
      throw hashError(scan, err);
    }
    if (cache)
      await cache.adoptTemps(
        results.flatMap((r, j) =>
          r.existed ? [] : [{ tmp: tasks[j]!.dest!, oid: r.oid, synced: syncing.has(j) }],
        ),
      );
    if (cache) await quarantineEditedLinks(cache, scan, taskIndex, results, options);
    results.forEach((r, j) => {
      const i = taskIndex[j]!;
      const f = scan.files[i]!;
      state.record(stateRel(scan, f), r.key, r.oid, hashedAt);
      entries[i] = { path: f.rel, sha256: r.oid, size: r.size };
    });
  }
  if (scan.dir) state.prune(scan.rel, new Set(scan.files.map((f) => stateRel(scan, f))));
  await state.save();
  return entries;
}

/**
 * With `cache.type: hardlink` a workspace file and its object are one inode, so a file edited in
 * place (chmod +w, then written) silently rewrote the object under its old name. A re-hashed file
 * whose previous object (from the lockfile or the hash state) is still that same inode but now
 * hashes differently proves it: the object is quarantined, so nothing (checkout, push, gc's
 * accounting) trusts it any longer, and the user is told once per file.
 */
async function quarantineEditedLinks(
  cache: Cache,
  scan: Scan,
  taskIndex: number[],
  results: HashOneResult[],
  options: HashOptions,
): Promise<void> {
  const state = loadHashState(cache.repo);
  let fromLock: Map<string, Oid> | undefined;
  if (options.previous && Boolean(options.previous.dir) === scan.dir) {
    if (!scan.dir) fromLock = new Map([['', options.previous.hash]]);
    else if (cache.hasSync(options.previous.hash)) {
      try {
        const m = await readManifest(cache, options.previous);
        fromLock = new Map(m.entries.map((e) => [e.path, e.sha256]));
      } catch {
        // An unreadable old manifest only means there is nothing to compare against.
      }
    }
  }
  for (const [j, r] of results.entries()) {
    const f = scan.files[taskIndex[j]!]!;
    const rel = stateRel(scan, f);
    for (const prev of new Set([fromLock?.get(f.rel), state.previous(rel)])) {
      if (prev === undefined || prev === r.oid) continue;
      let st: fs.Stats;
      try {
        st = fs.statSync(cache.objectPath(prev));
      } catch {
        continue;
      }
      const [dev, ino] = r.key.split(':');
      if (String(st.dev) !== dev || String(st.ino) !== ino) continue;
      options.out?.err(
        formatProblem(
          rel,
          'was edited in place while hard-linked to its cache object (cache.type hardlink), so that object no longer holds its version',
          prev,
          'Run lockstep pull to restore it from a remote that has it; replace such files (write a new file and rename it over) instead of editing them.',
        ),
      );
      await cache.quarantine(prev);
    }
  }
}

function toRef(scan: Scan, entries: ManifestEntry[]): { ref: ArtifactRef; manifest?: Buffer } {
  if (!scan.dir) {
    const e = entries[0]!;
    return { ref: { path: scan.rel, hash: e.sha256, size: e.size, nfiles: 1 } };
  }
  const manifest = encodeManifest(entries, scan.rel);
  const size = entries.reduce((a, e) => a + e.size, 0);
  const hash = createHashHex(manifest);
  return { ref: { path: scan.rel, hash, size, nfiles: entries.length, dir: true }, manifest };
}

/** Hashes a repo-relative file or directory using the hash state (no cache insert). For deps. */
export async function hashArtifact(
  repo: Repo,
  relPath: string,
  options: HashOptions = {},
): Promise<ArtifactRef> {
  const scan = scanPath(repo, relPath, { stat: loadHashState(repo).hasUnder(relPath) });
  return toRef(scan, await resolveEntries(repo, scan, undefined, options)).ref;
}

/** Hashes AND inserts into the cache (files and the directory manifest). For outs and `add`. */
export async function commitArtifact(
  repo: Repo,
  relPath: string,
  options: HashOptions = {},
): Promise<ArtifactRef> {
  const cache = options.cache ?? new Cache(repo, { out: options.out });
  const scan = scanPath(repo, relPath, { stat: loadHashState(repo).hasUnder(relPath) });
  const { ref, manifest } = toRef(scan, await resolveEntries(repo, scan, cache, options));
  if (manifest) {
    try {
      await cache.insertBytes(manifest);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new LockstepError(
          formatProblem(
            '.lockstep/cache',
            'no space left on device while writing',
            relPath,
            'Free disk space (lockstep gc) and retry.',
          ),
        );
      }
      throw err;
    }
  }
  return ref;
}

/** The manifests of the directory artifacts among `refs` (whose files may travel in packs). */
export function dirsOf(refs: ReadonlyArray<ArtifactRef>): Oid[] {
  return refs.filter((r) => r.dir).map((r) => r.hash);
}

/** True if the workspace path currently matches `ref` (via hash state; cheap). */
export async function isArtifactCurrent(repo: Repo, ref: ArtifactRef): Promise<boolean> {
  let scan: Scan;
  try {
    scan = scanPath(repo, ref.path);
  } catch {
    return false;
  }
  if (scan.dir !== Boolean(ref.dir) || scan.files.length !== ref.nfiles) return false;
  let size = 0;
  for (const f of scan.files) size += Number(f.stat!.size);
  if (size !== ref.size) return false;
  try {
    return toRef(scan, await resolveEntries(repo, scan, undefined, {})).ref.hash === ref.hash;
  } catch {
    return false;
  }
}

/** Reads the manifest of directory artifact `ref` (verified; fetched from the cache's remote if missing). */
export async function readManifest(cache: Cache, ref: ArtifactRef): Promise<DecodedManifest> {
  return decodeManifest(await cache.readBytes(ref.hash, { path: ref.path }), ref.hash, ref.path);
}

/** Every oid `ref` needs: the file, or the manifest plus every entry. Reads manifests from the cache. */
export async function artifactObjects(
  repo: Repo,
  ref: ArtifactRef,
  options: { cache?: Cache } = {},
): Promise<Oid[]> {
  if (!ref.dir) return [ref.hash];
  const manifest = await readManifest(options.cache ?? new Cache(repo), ref);
  return [ref.hash, ...new Set(manifest.entries.map((e) => e.sha256))];
}

/** Every artifact a lockfile references: tracked data and every stage's outs. */
export function lockfileArtifacts(lock: Pick<Lockfile, 'data' | 'stages'>): ArtifactRef[] {
  const refs: ArtifactRef[] = [];
  for (const [p, d] of Object.entries(lock.data ?? {})) refs.push({ ...d, path: p });
  for (const stage of Object.values(lock.stages ?? {})) refs.push(...(stage.outs ?? []));
  return refs;
}
