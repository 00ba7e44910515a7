/**
 * Reading pinned artifacts at any commit without a checkout: the `dvc.api.open(path, repo, rev)`
 * of this repository. Bytes come from the local cache, or from the remote when missing there;
 * every object is verified against its sha256 before it is used.
 */
import { lstat, mkdir, readdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { IntegrityError, LockstepError, formatProblem } from '../errors.ts';
import type { Repo } from '../repo.ts';
import { Cache } from '../store/cache.ts';
import { readManifest as readCachedManifest } from '../store/artifacts.ts';
import { targetInside } from '../entry-path.ts';
import type { DecodedManifest } from '../store/manifest.ts';
import type { Remote } from '../store/remote.ts';
import { pullObjects } from '../store/transfer.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';
import { resolveRef } from '../environment/refs.ts';
import { LOCKFILE } from './registry.ts';
import { readLockfileAt } from '../environment/revision.ts';

export interface FetchOptions {
  /** Where missing objects come from. Without one, everything must already be in the cache. */
  remote?: Remote;
}

/** Pulls `oids`; `manifest`: the directory they are files of (they may come from its packs). */
async function ensureLocal(
  repo: Repo,
  oids: string[],
  remote: Remote | undefined,
  manifest?: string,
): Promise<void> {
  if (!remote || oids.length === 0) return;
  const res = await pullObjects(repo, remote, oids, { manifests: manifest ? [manifest] : [] });
  if (res.missing.length > 0) {
    throw new IntegrityError(
      `${res.missing[0]}: object missing from the cache and from ${remote.url}. Push it from a machine that has it (lockstep push).`,
    );
  }
}

/** Reads and verifies a directory artifact's manifest (entry paths included). */
export async function readManifest(
  repo: Repo,
  ref: ArtifactRef,
  options: FetchOptions = {},
): Promise<DecodedManifest> {
  await ensureLocal(repo, [ref.hash], options.remote);
  const cache = new Cache(repo, { remote: options.remote });
  return readCachedManifest(cache, ref);
}

/**
 * Refuses a destination that already holds something: `registry get --out .` or `--out ~/work`
 * must not delete a directory of the user's files to make room. Only an empty directory (or
 * nothing) is replaced.
 */
async function checkDestinationFree(dest: string): Promise<void> {
  let st;
  try {
    st = await lstat(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (st.isDirectory() && (await readdir(dest)).length === 0) return;
  throw new LockstepError(
    formatProblem(
      '--out',
      `already exists (${st.isDirectory() ? 'a directory that is not empty' : st.isSymbolicLink() ? 'a symlink' : 'a file'})`,
      dest,
      'Name a new --out path, or remove it first; the fetch never overwrites.',
    ),
  );
}

/** Removes `from` and its parents up to and including `top`, each only while it is empty. */
async function removeEmptyUpTo(from: string, top: string): Promise<void> {
  for (let at = path.resolve(from); ; at = path.dirname(at)) {
    try {
      await rmdir(at);
    } catch {
      return; // not empty (something else wrote there meanwhile) or already gone
    }
    if (at === path.resolve(top) || at === path.dirname(at)) return;
  }
}

/** Puts the finished temp tree in place of `dest`, which is absent or an empty directory. */
async function moveIntoPlace(tmp: string, dest: string): Promise<void> {
  try {
    await rmdir(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await rename(tmp, dest);
}

/**
 * Writes the artifact `ref` to `dest` (a file path, or a directory for a directory artifact),
 * verifying every object. The destination appears whole or not at all (temp + rename), and
 * must not exist yet (an empty directory is fine).
 * @throws LockstepError when `dest` already holds a file, a symlink or a non-empty directory.
 * @returns the number of files and bytes written.
 */
export async function fetchArtifact(
  repo: Repo,
  ref: ArtifactRef,
  dest: string,
  options: FetchOptions = {},
): Promise<{ files: number; bytes: number }> {
  await checkDestinationFree(dest);
  const cache = new Cache(repo, { remote: options.remote });
  const tmp = `${dest}.tmp-${process.pid}-${Date.now()}`;
  // A directory's manifest (and so every entry path) is checked before anything is created.
  const manifest = ref.dir ? await readManifest(repo, ref, options) : undefined;
  // The first folder this creates (if any): removed again when the fetch fails, so a missing
  // object leaves no empty parents of --out behind.
  const created = await mkdir(path.dirname(dest), { recursive: true });
  let done = false;
  try {
    if (!manifest) {
      await ensureLocal(repo, [ref.hash], options.remote);
      const bytes = await cache.readBytes(ref.hash);
      await writeFile(tmp, bytes, { flag: 'wx' });
      await moveIntoPlace(tmp, dest);
      done = true;
      return { files: 1, bytes: bytes.length };
    }
    // With the manifest: its files come from packs where the remote has them (packs.ts).
    await ensureLocal(
      repo,
      [ref.hash, ...new Set(manifest.entries.map((e) => e.sha256))],
      options.remote,
      ref.hash,
    );
    let bytes = 0;
    await mkdir(tmp); // fails when something already sits there: the tree below is ours alone
    for (const entry of manifest.entries) {
      const data = await cache.readBytes(entry.sha256, { manifest: ref.hash });
      // tmp is new and holds only what this loop writes; 'wx' never follows a link or overwrites.
      const file = targetInside(tmp, entry.path, ref.path);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, data, { flag: 'wx' });
      bytes += data.length;
    }
    if (manifest.entries.length !== ref.nfiles || bytes !== ref.size) {
      throw new IntegrityError(
        `${ref.path}: manifest ${ref.hash.slice(0, 12)} lists ${manifest.entries.length} files / ${bytes} bytes but the lockfile says ${ref.nfiles} / ${ref.size}. The lockfile was edited by hand; re-run lockstep repro.`,
      );
    }
    await moveIntoPlace(tmp, dest);
    done = true;
    return { files: manifest.entries.length, bytes };
  } finally {
    await rm(tmp, { recursive: true, force: true });
    if (!done && created) await removeEmptyUpTo(path.dirname(dest), created);
  }
}

/** The tracked artifact (data or stage out) at `relPath` or containing it, in a lockfile. */
export function findArtifact(lockfile: Lockfile, relPath: string): ArtifactRef | undefined {
  const norm = relPath.replace(/\\/g, '/').replace(/\/+$/, '');
  const all: ArtifactRef[] = [
    ...Object.entries(lockfile.data).map(([p, v]) => ({ path: p, ...v })),
    ...Object.values(lockfile.stages).flatMap((s) => s.outs),
  ];
  return all.find((a) => a.path === norm) ?? all.find((a) => a.dir && norm.startsWith(`${a.path}/`));
}

/**
 * Returns the bytes of `relPath` as pinned by the lockfile at `rev` (a commit, branch, tag or
 * environment): a tracked file, or a file inside a tracked directory. Like `dvc.api.read`.
 */
export async function openArtifact(
  repo: Repo,
  relPath: string,
  options: FetchOptions & { rev?: string } = {},
): Promise<Buffer> {
  const rev = options.rev ?? 'HEAD';
  const { commit } = await resolveRef(repo.root, rev);
  const lockfile = await readLockfileAt(repo.root, commit);
  const ref = lockfile ? findArtifact(lockfile, relPath) : undefined;
  if (!ref) {
    throw new LockstepError(
      `${relPath}: not tracked in ${LOCKFILE} at ${rev}. Track it with lockstep add, or name a stage output.`,
    );
  }
  const cache = new Cache(repo, { remote: options.remote });
  if (!ref.dir) {
    await ensureLocal(repo, [ref.hash], options.remote);
    return cache.readBytes(ref.hash);
  }
  const manifest = await readManifest(repo, ref, options);
  const inner = relPath.replace(/\\/g, '/').slice(ref.path.length + 1);
  const entry = manifest.entries.find((e) => e.path === inner);
  if (!entry) {
    throw new LockstepError(
      `${relPath}: not in ${ref.path} at ${rev}. List it with lockstep registry show ${rev}.`,
    );
  }
  await ensureLocal(repo, [ref.hash, entry.sha256], options.remote, ref.hash);
  return cache.readBytes(entry.sha256, { manifest: ref.hash });
}
