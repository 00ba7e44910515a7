/**
 * Checkout: rebuilds a tracked path from verified cache objects (pulling missing ones from a
 * remote) in a temp sibling and renames it in, so a failure leaves the old contents in place.
 */
import fs from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, ManifestEntry } from '../types.ts';
import type { Output } from '../output.ts';
import type { Remote } from './remote.ts';
import { tempPathFor } from '../atomic.ts';
import { targetInside } from '../entry-path.ts';
import { isArtifactCurrent, readManifest } from './artifacts.ts';
import { Cache, downloadVerified } from './cache.ts';
import { hashFiles, HashTaskError } from './hasher.ts';
import { loadHashState, statKey } from './hash-state.ts';
import { createProgress } from '../progress.ts';
import { validateRepoPath } from './paths.ts';
import {
  fetchMembers,
  packGroups,
  packsToFetch,
  planOfGroups,
  remoteHoldings,
  type PackGroup,
} from './packs.ts';

/**
 * Materializes `ref` at `ref.path` from the cache (pulling missing objects from `remote`),
 * replacing what is there atomically (build in a temp dir next to it, then rename). Files are
 * copies, writable. Every object is verified as it is copied out. `signal` stops the pull.
 *
 * `direct`: objects the cache lacks are downloaded straight to their place in the checkout and
 * verified there, and are not kept in the cache. For a scratch workspace used once and thrown
 * away (a Vertex AI job's inputs): each byte is written once and hashed once, where a pull into
 * the cache and a copy out of it write it twice and hash it twice, and no fsync is spent on a
 * disk that goes with the job.
 */
export async function checkoutArtifact(
  repo: Repo,
  ref: ArtifactRef,
  options: { remote?: Remote; out?: Output; signal?: AbortSignal; direct?: boolean } = {},
): Promise<void> {
  validateRepoPath(repo, ref.path);
  if (await isArtifactCurrent(repo, ref)) return;
  const cache = new Cache(repo, { remote: options.remote, out: options.out });
  // Reading the manifest validates every entry path, before anything is fetched or written.
  const manifest = ref.dir ? await readManifest(cache, ref) : undefined;
  const entries: ManifestEntry[] = manifest
    ? manifest.entries
    : [{ path: '', sha256: ref.hash, size: ref.size }];
  const missing = [...new Set(entries.map((e) => e.sha256))].filter((oid) => !cache.hasSync(oid));
  const direct = options.direct === true && missing.length > 0;
  let packs: PackGroup[] = [];
  if (direct) {
    if (!options.remote) throw cache.missingError(missing[0]!, ref.path, false);
    const plan = planOfGroups(manifest ? packGroups(manifest.entries) : []);
    const holdings = await remoteHoldings(options.remote, missing, plan, { signal: options.signal });
    const absent = missing.find((oid) => !holdings.held.has(oid));
    if (absent) throw cache.missingError(absent, ref.path, false);
    packs = packsToFetch(plan, holdings.packs, missing);
  } else if (missing.length > 0) {
    if (!options.remote) throw cache.missingError(missing[0]!, ref.path, false);
    const { pullObjects } = await import('./transfer.ts');
    // With its manifest, a directory's files come from its packs (packs.ts).
    const pulled = await pullObjects(repo, options.remote, ref.dir ? [ref.hash, ...missing] : missing, {
      manifests: ref.dir ? [ref.hash] : [],
      out: options.out,
      signal: options.signal,
    });
    if (pulled.missing.length > 0) throw cache.missingError(pulled.missing[0]!, ref.path, false);
  }
  // Corrupt cached files are fetched again, from packs where the remote has them.
  const remote = options.remote;
  const refetch = remote
    ? async (oids: string[]): Promise<void> => {
        const { pullObjects } = await import('./transfer.ts');
        const pulled = await pullObjects(repo, remote, ref.dir ? [ref.hash, ...oids] : oids, {
          manifests: ref.dir ? [ref.hash] : [],
          signal: options.signal,
        });
        if (pulled.missing.length > 0) throw cache.missingError(pulled.missing[0]!, ref.path, true);
      }
    : undefined;
  const abs = path.join(repo.root, ref.path);
  const parent = path.dirname(abs);
  await fs.promises.mkdir(parent, { recursive: true });
  const build = ref.dir
    ? await fs.promises.mkdtemp(path.join(parent, `.${path.basename(abs)}.lockstep-`))
    : tempPathFor(abs);
  // `build` is fresh (mkdtemp) and only ever receives directories and regular files, so no
  // symlink can sit on the way to a target; targetInside re-checks each join regardless.
  const targets = manifest ? manifest.entries.map((e) => targetInside(build, e.path, ref.path)) : [build];
  try {
    if (ref.dir) {
      await fs.promises.chmod(build, 0o755);
      for (const dir of new Set(targets.map((t) => path.dirname(t)))) fs.mkdirSync(dir, { recursive: true });
    }
    const destKeys = direct
      ? await checkoutDirect(cache, options.remote!, entries, targets, new Set(missing), ref.path, {
          ...options,
          refetch,
          packs,
        })
      : await copyOutVerified(cache, entries, targets, ref.path, options.out, refetch);
    // Files written within RACY_MS of now are left unrecorded and re-hashed on the next check.
    const writtenAt = Date.now();
    await swapInto(build, abs, repo.tmpDir);
    const state = loadHashState(repo);
    state.forget(ref.path);
    entries.forEach((e, i) =>
      state.record(e.path ? `${ref.path}/${e.path}` : ref.path, destKeys[i]!, e.sha256, writtenAt),
    );
    await state.save();
  } catch (err) {
    await fs.promises.rm(build, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The `direct` checkout: entries whose object is in `fetch` are downloaded to their target and
 * verified there (an object named by several entries is downloaded once and copied), those in
 * `packs` a pack at a time; the others are copied out of the cache as usual. Returns each
 * target's stat key.
 */
async function checkoutDirect(
  cache: Cache,
  remote: Remote,
  entries: ManifestEntry[],
  targets: string[],
  fetch: Set<string>,
  where: string,
  options: {
    out?: Output;
    signal?: AbortSignal;
    refetch?: (oids: string[]) => Promise<void>;
    packs: PackGroup[];
  },
): Promise<string[]> {
  const keys: string[] = new Array(entries.length);
  const cached = entries.map((_, i) => i).filter((i) => !fetch.has(entries[i]!.sha256));
  const copied = await copyOutVerified(
    cache,
    cached.map((i) => entries[i]!),
    cached.map((i) => targets[i]!),
    where,
    options.out,
    options.refetch,
  );
  cached.forEach((i, j) => (keys[i] = copied[j]!));
  const byOid = new Map<string, number[]>();
  entries.forEach((e, i) => {
    if (!fetch.has(e.sha256)) return;
    const at = byOid.get(e.sha256);
    if (at) at.push(i);
    else byOid.set(e.sha256, [i]);
  });
  const progress =
    options.out && byOid.size >= 200
      ? createProgress(options.out, `checkout ${where}`, byOid.size, { unit: 'objects' })
      : undefined;
  const keyOf = async (file: string) => statKey(await fs.promises.stat(file, { bigint: true }));
  // The remote bounds its own requests in flight; this only keeps the queue of waiting ones short.
  const limit = pLimit(32);
  // The copies of an object named by many entries (empty files, say) run side by side too.
  const copies = pLimit(16);
  /** Objects written (or being written) to their first target. */
  const placed = new Set<string>();
  /** Writes object `oid` to its first target with `write`, then copies it to the others. */
  const place = async (oid: string, write: (first: string) => Promise<void>): Promise<void> => {
    const at = byOid.get(oid)!;
    placed.add(oid);
    const first = targets[at[0]!]!;
    await write(first);
    await fs.promises.chmod(first, 0o644);
    keys[at[0]!] = await keyOf(first);
    // Settled, all of them, before a failure is passed on: the build dir is removed then.
    const done = await Promise.allSettled(
      at.slice(1).map((i) =>
        copies(async () => {
          options.signal?.throwIfAborted();
          await fs.promises.copyFile(first, targets[i]!);
          await fs.promises.chmod(targets[i]!, 0o644);
          keys[i] = await keyOf(targets[i]!);
        }),
      ),
    );
    const bad = done.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
    progress?.tick(1);
  };
  const inPacks = new Set(options.packs.flatMap((g) => g.members.map((m) => m.oid)));
  try {
    const settled = await Promise.allSettled([
      // A pack's members are verified as it is split, then written where they go.
      ...options.packs.map((group) =>
        limit(async () => {
          options.signal?.throwIfAborted();
          const wanted = group.members.map((m) => m.oid).filter((o) => byOid.has(o));
          const members = await fetchMembers(remote, group, cache.tempPath(), wanted, {
            signal: options.signal,
          });
          const writes: Promise<void>[] = [];
          for (const [oid, data] of members) {
            if (!byOid.has(oid) || placed.has(oid)) continue;
            writes.push(place(oid, (first) => fs.promises.writeFile(first, data, { flag: 'wx' })));
          }
          const done = await Promise.allSettled(writes);
          const bad = done.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          if (bad) throw bad.reason;
        }),
      ),
      ...[...byOid.keys()]
        .filter((oid) => !inPacks.has(oid))
        .map((oid) =>
          limit(async () => {
            options.signal?.throwIfAborted();
            await place(oid, async (first) => {
              await downloadVerified(remote, oid, first, { signal: options.signal });
            });
          }),
        ),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } finally {
    progress?.stop();
  }
  return keys;
}

/**
 * Copies objects to `targets`, verifying each; corrupt objects are quarantined and re-fetched
 * once (by `refetch`, else loose from the cache's remote).
 */
async function copyOutVerified(
  cache: Cache,
  entries: ManifestEntry[],
  targets: string[],
  where: string,
  out: Output | undefined,
  refetch?: (oids: string[]) => Promise<void>,
): Promise<string[]> {
  const keys: string[] = new Array(entries.length);
  let pending = entries.map((_, i) => i);
  for (let attempt = 0; pending.length > 0; attempt++) {
    const tasks = pending.map((i) => ({
      path: cache.objectPath(entries[i]!.sha256),
      dest: targets[i]!,
      mode: 0o644,
    }));
    let results;
    try {
      results = await hashFiles(tasks, {
        out,
        sizes: pending.map((i) => entries[i]!.size),
        label: tasks.length >= 200 ? `checkout ${where}` : undefined,
      });
    } catch (err) {
      if (err instanceof HashTaskError && err.code === 'ENOENT')
        throw cache.missingError(path.basename(err.task.path), where, false);
      throw err;
    }
    const bad: number[] = [];
    results.forEach((r, j) => {
      const i = pending[j]!;
      if (r.oid === entries[i]!.sha256) keys[i] = r.destKey!;
      else bad.push(i);
    });
    const badOids = [...new Set(bad.map((i) => entries[i]!.sha256))];
    for (const oid of badOids) await cache.quarantine(oid);
    for (const i of bad) fs.rmSync(targets[i]!, { force: true });
    if (bad.length === 0) break;
    if (!cache.remote || attempt > 0) throw cache.missingError(badOids[0]!, where, true);
    if (refetch) await refetch(badOids);
    else for (const oid of badOids) await cache.download(cache.remote, oid);
    pending = bad;
  }
  return keys;
}

/**
 * Renames `build` onto `abs`, moving whatever is there aside first and deleting it after. A file
 * replaced by a file is renamed over; a directory there, or a file where a directory goes (a
 * path that was a single file and is now a directory artifact), is moved aside, since a rename
 * cannot replace one kind with the other.
 */
async function swapInto(build: string, abs: string, tmpDir: string): Promise<void> {
  let trash: string | undefined;
  try {
    const st = await fs.promises.lstat(abs);
    const buildIsDir = (await fs.promises.lstat(build)).isDirectory();
    if (st.isDirectory() || buildIsDir) trash = await moveAside(abs, tmpDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  try {
    await fs.promises.rename(build, abs);
  } catch (err) {
    // What was there goes back: a failed checkout leaves the old contents in place.
    if (trash) await fs.promises.rename(trash, abs).catch(() => undefined);
    throw err;
  }
  if (trash) await removeTrash(trash);
}

/**
 * Deletes what `swapInto` moved aside. The checkout is in place by then, so a failure here does
 * not fail it: a read-only directory (whose entries cannot be unlinked) is made writable and the
 * removal retried; what still cannot be removed is left, and in `.lockstep/tmp` the sweep retries.
 */
async function removeTrash(trash: string): Promise<void> {
  try {
    await fs.promises.rm(trash, { recursive: true, force: true });
    return;
  } catch {
    // Made writable below.
  }
  const writable = async (dir: string): Promise<void> => {
    await fs.promises.chmod(dir, 0o700).catch(() => undefined);
    const entries = await fs.promises.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await writable(path.join(dir, e.name));
  };
  if ((await fs.promises.lstat(trash).catch(() => undefined))?.isDirectory()) await writable(trash);
  await fs.promises.rm(trash, { recursive: true, force: true }).catch(() => undefined);
}

/**
 * Moves `abs` aside into `tmpDir` (`.lockstep/tmp/`, under a `tempPathFor` name carrying this
 * pid), so a process killed before it deletes it leaves nothing in the work tree (where `git
 * status` and an `add` of the parent would pick it up) and the next command holding the repo lock
 * sweeps it. Where that rename fails (another filesystem than `.lockstep`, a read-only directory)
 * it is moved aside next to itself, as before.
 */
async function moveAside(abs: string, tmpDir: string): Promise<string> {
  await fs.promises.mkdir(tmpDir, { recursive: true });
  const trash = tempPathFor(abs, tmpDir);
  try {
    await fs.promises.rename(abs, trash);
    return trash;
  } catch (err) {
    // EXDEV: another filesystem. EACCES/EPERM: a directory moved to another parent needs write
    // permission on itself (for its `..`), which a read-only directory lacks; next to itself it
    // does not.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw err;
  }
  const sibling = `${tempPathFor(abs)}.old`;
  await fs.promises.rename(abs, sibling);
  return sibling;
}
