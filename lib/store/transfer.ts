/**
 * Moving objects between the cache and a remote: only what is missing on the other side, in
 * parallel with a bounded pool. Uploads are verified before they leave the cache (a corrupt
 * object is quarantined, never pushed); downloads are verified before they enter it.
 */
import pLimit from 'p-limit';
import fs from 'node:fs';
import type { Repo } from '../repo.ts';
import type { Oid } from '../types.ts';
import type { Output } from '../output.ts';
import type { Remote } from './remote.ts';
import { Cache, fsyncFile } from './cache.ts';
import { createProgress } from '../progress.ts';
import { buildPack, fetchMembers, packsToFetch, planPacks, remoteHoldings, type PackGroup } from './packs.ts';

export interface TransferOptionsJobs {
  /** Concurrent transfers (default 8). */
  jobs?: number;
  /**
   * The directory manifests (in the cache) whose files may travel in packs. Default: every cached
   * object among the oids is looked at (a read of its first bytes), which costs about 80 ms per
   * 10,000 objects: callers that know their artifacts say which are directories.
   */
  manifests?: Oid[];
  out?: Output;
  signal?: AbortSignal;
}

async function runPool<T>(items: T[], jobs: number, fn: (item: T) => Promise<void>): Promise<void> {
  const limit = pLimit(Math.max(1, jobs));
  const settled = await Promise.allSettled(items.map((item) => limit(() => fn(item))));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * A push marks objects it found already on the remote when their last change is older than
 * this: `gc --remote` deletes only what is unreferenced and unchanged for its grace period
 * (default 24 h), so a lockfile has grace minus this (23 h) to land after its push.
 */
export const TOUCH_AFTER_MS = 3_600_000;

/** Objects up to this size are read into memory once, verified and sent from the same bytes. */
const IN_MEMORY_PUSH_BYTES = 4 << 20;

/** True when cached object `m.oid` is `m.size` bytes long. */
function sizeIs(cache: Cache, m: { oid: Oid; size: number }): boolean {
  try {
    return fs.statSync(cache.objectPath(m.oid), { throwIfNoEntry: false })?.size === m.size;
  } catch {
    return false;
  }
}

/**
 * Uploads the objects the remote does not have. The small files of a directory whose manifest
 * is among `oids` go in packs (packs.ts): a pack the remote has, or whose every file it has
 * loose, is not sent again.
 */
export async function pushObjects(
  repo: Repo,
  remote: Remote,
  oids: Oid[],
  options: TransferOptionsJobs = {},
): Promise<{ transferred: number; skipped: number; bytes: number }> {
  const cache = new Cache(repo, { out: options.out });
  const unique = [...new Set(oids)];
  const plan = planPacks(cache, options.manifests ?? unique, new Set(unique));
  const { held, packs, loose } = await remoteHoldings(remote, unique, plan, { signal: options.signal });
  // A pack is built only of files of the sizes its manifest says: any file of the directory may
  // hold the bytes of a manifest (a copy of one, or one written to look like one) and claim any
  // size for its siblings. The files of a group left out go loose (a missing or damaged one fails
  // there, named as such).
  const packsTodo = plan.groups.filter(
    (g) =>
      !packs.has(g.id) &&
      !g.members.every((m) => loose.has(m.oid)) &&
      g.members.every((m) => sizeIs(cache, m)),
  );
  const viaPack = new Set(packsTodo.flatMap((g) => g.members.map((m) => m.oid)));
  const todo = unique.filter((oid) => !held.has(oid) && !viaPack.has(oid));
  // What is already there is in use again: mark it so a concurrent `gc --remote` keeps it until
  // the lockfile that references it lands (see remote-gc.ts). A file held in a pack is kept by it.
  const inUse = [...loose, ...packs];
  if (inUse.length > 0) await remote.touch(inUse, { olderThanMs: TOUCH_AFTER_MS, signal: options.signal });
  const units = todo.length + viaPack.size;
  const progress =
    options.out && units > 0
      ? createProgress(options.out, `push ${remote.url}`, units, { unit: 'objects' })
      : undefined;
  let bytes = 0;
  let stored = 0;
  const pushPack = async (group: PackGroup): Promise<void> => {
    const data = await buildPack(group, async (oid) => {
      const read = await cache.readChecked(oid);
      if (typeof read === 'string') throw cache.missingError(oid, undefined, read === 'corrupt');
      return read;
    });
    // Sent from memory; a file only for a remote that sends a pack this big from one (a GCS
    // remote set to upload resumably below the pack size).
    const tmp = cache.tempPath();
    try {
      if (!(data.length < (remote.putFromMemoryBelow ?? 0))) fs.writeFileSync(tmp, data);
      if (await remote.put(group.id, tmp, { signal: options.signal, data })) {
        stored += group.members.length;
        bytes += data.length;
      }
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    progress?.tick(group.members.length);
  };
  try {
    await runPool<Oid | PackGroup>([...packsTodo, ...todo], options.jobs ?? 8, async (item) => {
      if (typeof item !== 'string') return pushPack(item);
      const oid = item;
      // Verify before upload: a corrupt local object must never reach the remote. A small one is
      // verified in memory and those very bytes are sent.
      const file = cache.objectPath(oid);
      // Synchronous, as the read below: a stat is one call, where a promise is a trip through
      // the thread pool. Any failure is read as "not there": the read or check says which.
      let size: number | undefined;
      try {
        size = fs.statSync(file, { throwIfNoEntry: false })?.size;
      } catch {
        size = undefined;
      }
      // Which way it failed is read at the failure: an object deleted after the stat (a `gc` in
      // another clone of the same cache) is missing, not corrupt.
      let data: Buffer | undefined;
      if (size !== undefined && size <= IN_MEMORY_PUSH_BYTES) {
        const read = await cache.readChecked(oid);
        if (typeof read === 'string') throw cache.missingError(oid, undefined, read === 'corrupt');
        data = read;
      } else {
        const state = size === undefined ? 'missing' : await cache.check(oid);
        if (state !== 'ok') throw cache.missingError(oid, undefined, state === 'corrupt');
      }
      // Another clone pushing at the same time may have stored it first: then it is not ours.
      let put: boolean;
      try {
        put = await remote.put(oid, file, { signal: options.signal, ...(data ? { data } : {}) });
      } catch (err) {
        // Deleted after it was verified and before it was read to be sent (a large object is
        // sent from the file): missing, as above.
        if (!data && (err as NodeJS.ErrnoException).code === 'ENOENT' && !fs.existsSync(file))
          throw cache.missingError(oid, undefined, false);
        throw err;
      }
      if (put) {
        stored++;
        // The size seen before: the file may be gone by now (a gc once the remote has it).
        bytes += data ? data.length : size!;
      }
      progress?.tick(1);
    });
  } finally {
    progress?.stop();
  }
  return { transferred: stored, skipped: Math.max(0, unique.length - stored), bytes };
}

/** Downloaded objects made durable and named together (a crash loses at most one batch's transfer). */
const ADOPT_BATCH = 256;
/** A batch is also made durable once its temps hold this many bytes, so a kill loses little transfer. */
const ADOPT_BATCH_BYTES = 32 << 20;
/**
 * A download of at least this many bytes is fsynced and named on its own as soon as it is
 * verified: its fsync costs little next to its transfer, and waiting for a batch would let a
 * kill throw away minutes of download (and leave the temp to `gc`'s stale-temp sweep).
 */
const SYNC_AT_ONCE_BYTES = 16 << 20;

/**
 * Downloads the objects the cache does not have. Objects the remote lacks are returned in
 * `missing`; an object whose bytes do not match its name is an IntegrityError (that object never
 * enters the cache; the verified others do). The files of a directory whose manifest is among
 * `oids` (and in the cache) come from its packs where the remote has them (packs.ts): a caller
 * pulling a directory's files passes its manifest with them.
 */
export async function pullObjects(
  repo: Repo,
  remote: Remote,
  oids: Oid[],
  options: TransferOptionsJobs = {},
): Promise<{ transferred: number; skipped: number; bytes: number; missing: Oid[] }> {
  const cache = new Cache(repo, { out: options.out });
  const unique = [...new Set(oids)];
  const absent = unique.filter((oid) => !cache.hasSync(oid));
  const plan =
    absent.length > 0 ? planPacks(cache, options.manifests ?? unique) : { groups: [], memberOf: new Map() };
  const { held, packs } =
    absent.length > 0
      ? await remoteHoldings(remote, absent, plan, { signal: options.signal })
      : { held: new Set<Oid>(), packs: new Set<string>() };
  const fromPacks = packsToFetch(plan, packs, absent);
  const absentSet = new Set(absent);
  const viaPack = new Set(
    fromPacks.flatMap((g) => g.members.map((m) => m.oid)).filter((o) => absentSet.has(o)),
  );
  const todo = absent.filter((oid) => held.has(oid) && !viaPack.has(oid));
  const missing = absent.filter((oid) => !held.has(oid));
  const units = todo.length + viaPack.size;
  const progress =
    options.out && units > 0
      ? createProgress(options.out, `pull ${remote.url}`, units, { unit: 'objects' })
      : undefined;
  let bytes = 0;
  let transferred = 0;
  // Verified downloads wait as temps and enter the cache in batches: one sync makes a batch
  // durable before any of its objects gets its name (adoptTemps), instead of one fsync each.
  let pending: Array<{ tmp: string; oid: Oid; synced?: boolean }> = [];
  let pendingBytes = 0;
  const adopt = async (): Promise<void> => {
    const batch = pending;
    pending = [];
    pendingBytes = 0;
    try {
      await cache.adoptTemps(batch);
    } catch (err) {
      await Promise.all(batch.map((b) => fs.promises.rm(b.tmp, { force: true })));
      throw err;
    }
  };
  /** Members already taken from a pack (two packs of overlapping directories may both hold one). */
  const taken = new Set<Oid>();
  /** A pack's members the cache lacks, written as temps for the next batch. */
  const pullPack = async (group: PackGroup): Promise<void> => {
    const wanted = group.members.map((m) => m.oid).filter((o) => viaPack.has(o) && !cache.hasSync(o));
    const members = await fetchMembers(remote, group, cache.tempPath(), wanted, { signal: options.signal });
    let got = 0;
    for (const [oid, data] of members) {
      if (!viaPack.has(oid) || taken.has(oid) || cache.hasSync(oid)) continue;
      taken.add(oid);
      const tmp = cache.tempPath();
      fs.writeFileSync(tmp, data, { mode: 0o444, flag: 'wx' });
      pending.push({ tmp, oid });
      pendingBytes += data.length;
      bytes += data.length;
      transferred++;
      got++;
    }
    progress?.tick(got);
  };
  try {
    await runPool<Oid | PackGroup>([...fromPacks, ...todo], options.jobs ?? 8, async (item) => {
      if (typeof item !== 'string') {
        await pullPack(item);
      } else {
        const oid = item;
        const { tmp, size } = await cache.downloadTemp(remote, oid, { signal: options.signal });
        bytes += size;
        transferred++;
        if (size >= SYNC_AT_ONCE_BYTES) {
          try {
            await fsyncFile(tmp);
            await cache.adoptTemps([{ tmp, oid, synced: true }]);
          } catch (err) {
            await fs.promises.rm(tmp, { force: true });
            throw err;
          }
        } else {
          pending.push({ tmp, oid });
          pendingBytes += size;
        }
        progress?.tick(1);
      }
      if (pending.length >= ADOPT_BATCH || pendingBytes >= ADOPT_BATCH_BYTES) await adopt();
    });
  } catch (err) {
    // What was fetched enters the cache even when another download failed: a retry pulls only
    // the rest. The download's failure is the one reported.
    await adopt().catch(() => undefined);
    throw err;
  } finally {
    progress?.stop();
  }
  await adopt();
  return { transferred, skipped: unique.length - absent.length, bytes, missing };
}
