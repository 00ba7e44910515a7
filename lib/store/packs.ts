/**
 * Packs: the small files of a directory artifact travel to and from a remote a few dozen at a
 * time, in one object each, instead of one request per file (a dataset of 10,000 clips was
 * 10,000 uploads, and as many downloads on every fresh clone or Vertex AI replica).
 *
 * What a pack holds follows from the directory's manifest alone, so no index is stored: the
 * distinct objects of up to PACK_MEMBER_MAX_BYTES, sorted by oid, are cut into groups at
 * content-defined points (after an oid whose last 16 bits are a multiple of BOUNDARY_EVERY, or
 * before a member that would take the group past PACK_MAX_BYTES or PACK_MAX_MEMBERS). Adding or
 * changing one file changes one group (rarely two), so a new version of a dataset uploads one
 * pack, and versions share the packs of their unchanged groups. A group is named by its
 * members: `pack-` + sha256 of `lockstep pack v1` and each member's oid and size, one per line;
 * the pack's bytes are the members' bytes end to end in that order, stored at
 * `packs/ab/cdef...` beside `sha256/`. Each member is verified against its own oid when it is
 * taken out, so a damaged pack never puts a wrong byte in the cache or the workspace. A group
 * of one stays a loose object.
 *
 * A remote may hold a directory's files loose (pushed before packs, or by the upload of a
 * group whose files were all there already), in packs, or both: readers look for the packs
 * first and then for what is still missing, loose; a pack that cannot be read (damaged, or
 * deleted since it was found) gives way to loose copies of its files where the remote has them.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Oid } from '../types.ts';
import type { Remote, TransferOptions } from './remote.ts';
import { downloadVerified, type Cache } from './cache.ts';
import { IntegrityError, formatProblem } from '../errors.ts';
import { decodeManifest, sha256Hex } from './manifest.ts';
import { objectKey } from './remote.ts';

/** Files up to this size are packed; larger ones stay loose (resumable, one request of their own). */
export const PACK_MEMBER_MAX_BYTES = 1 << 20;
/** A pack is at most this many bytes... */
export const PACK_MAX_BYTES = 4 << 20;
/** ...and this many members. */
export const PACK_MAX_MEMBERS = 256;
/** On average a group ends after one oid in this many (the content-defined cut). */
const BOUNDARY_EVERY = 64;

/** Prefix of a pack's id; `objectKey` files packs under `packs/`. */
export const PACK_ID_PREFIX = 'pack-';

export interface PackMember {
  oid: Oid;
  size: number;
}

export interface PackGroup {
  /** `pack-` + 64 hex digits. */
  id: string;
  members: PackMember[];
  /** Sum of the members' sizes: the pack's length. */
  bytes: number;
}

/** True for a pack id (`pack-` + a 64-hex-digit digest). */
export function isPackId(value: string): boolean {
  return /^pack-[0-9a-f]{64}$/.test(value);
}

function packIdOf(members: PackMember[]): string {
  const h = createHash('sha256').update('lockstep pack v1\n');
  for (const m of members) h.update(`${m.oid} ${m.size}\n`);
  return PACK_ID_PREFIX + h.digest('hex');
}

function isBoundary(oid: Oid): boolean {
  return parseInt(oid.slice(-4), 16) % BOUNDARY_EVERY === 0;
}

/** The packs of a directory whose entries are `entries` (see the module comment). */
export function packGroups(entries: ReadonlyArray<{ sha256: Oid; size: number }>): PackGroup[] {
  const sizes = new Map<Oid, number>();
  for (const e of entries) if (e.size <= PACK_MEMBER_MAX_BYTES) sizes.set(e.sha256, e.size);
  const sorted = [...sizes.keys()].sort();
  const groups: PackGroup[] = [];
  let cur: PackMember[] = [];
  let bytes = 0;
  const close = (): void => {
    if (cur.length >= 2) groups.push({ id: packIdOf(cur), members: cur, bytes });
    cur = [];
    bytes = 0;
  };
  for (const oid of sorted) {
    const size = sizes.get(oid)!;
    if (cur.length > 0 && (bytes + size > PACK_MAX_BYTES || cur.length >= PACK_MAX_MEMBERS)) close();
    cur.push({ oid, size });
    bytes += size;
    if (isBoundary(oid)) close();
  }
  close();
  return groups;
}

/** The packs that cover some of a set of objects, and which pack each covered object is in. */
export interface PackPlan {
  groups: PackGroup[];
  /** Member oid -> the groups holding it (one, unless two manifests' groups overlap). */
  memberOf: Map<Oid, PackGroup[]>;
}

const MANIFEST_MAGIC = Buffer.from('{"entries":[');
/** Manifests are read up to this size (a manifest of 100,000 entries is about 13 MB). */
const MANIFEST_MAX_BYTES = 64 << 20;

/** Which cached objects are manifests, remembered per process (objects never change). */
const manifestEntries = new Map<Oid, ReadonlyArray<{ sha256: Oid; size: number }> | null>();

/**
 * The entries of cached object `oid` when it is a directory manifest, else undefined. Reads the
 * first bytes of the object only, unless they open a manifest; a manifest that does not verify
 * or decode is no manifest here (whoever reads it as one reports the problem).
 */
export function cachedManifestEntries(
  cache: Cache,
  oid: Oid,
): ReadonlyArray<{ sha256: Oid; size: number }> | undefined {
  const known = manifestEntries.get(oid);
  if (known !== undefined) return known ?? undefined;
  let result: ReadonlyArray<{ sha256: Oid; size: number }> | null = null;
  let fd: number | undefined;
  try {
    fd = fs.openSync(cache.objectPath(oid), 'r');
    const head = Buffer.alloc(MANIFEST_MAGIC.length);
    const size = fs.fstatSync(fd).size;
    if (
      size <= MANIFEST_MAX_BYTES &&
      fs.readSync(fd, head, 0, head.length, 0) === head.length &&
      head.equals(MANIFEST_MAGIC)
    ) {
      const bytes = Buffer.alloc(size);
      let at = 0;
      while (at < size) {
        const n = fs.readSync(fd, bytes, at, size - at, at);
        if (n === 0) break;
        at += n;
      }
      if (at === size && sha256Hex(bytes) === oid)
        result = decodeManifest(bytes, oid).entries.map((e) => ({ sha256: e.sha256, size: e.size }));
    }
  } catch {
    result = null;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  // Only a positive answer is remembered: an object missing now may be pulled in later.
  if (result) manifestEntries.set(oid, result);
  return result ?? undefined;
}

/** A plan of the given groups. */
export function planOfGroups(groups: PackGroup[]): PackPlan {
  const byId = new Map(groups.map((g) => [g.id, g]));
  const memberOf = new Map<Oid, PackGroup[]>();
  for (const g of byId.values()) {
    for (const m of g.members) {
      const at = memberOf.get(m.oid);
      if (at) at.push(g);
      else memberOf.set(m.oid, [g]);
    }
  }
  return { groups: [...byId.values()], memberOf };
}

/**
 * The packs to fetch for `wanted` (members of `plan`'s groups found on the remote, `present`):
 * each wanted member once, from the first present group holding it.
 */
export function packsToFetch(plan: PackPlan, present: Set<string>, wanted: Iterable<Oid>): PackGroup[] {
  const chosen = new Map<string, PackGroup>();
  for (const oid of wanted) {
    const groups = plan.memberOf.get(oid);
    if (!groups || groups.some((g) => chosen.has(g.id))) continue;
    const g = groups.find((x) => present.has(x.id));
    if (g) chosen.set(g.id, g);
  }
  return [...chosen.values()];
}

/**
 * The packs of the manifests among `oids` that are in the cache. `covers` limits them to groups
 * whose members are all in it (a push can only build a pack whose every file it holds).
 */
export function planPacks(cache: Cache, oids: Iterable<Oid>, covers?: Set<Oid>): PackPlan {
  const groups = new Map<string, PackGroup>();
  for (const oid of oids) {
    const entries = cachedManifestEntries(cache, oid);
    if (!entries) continue;
    for (const g of packGroups(entries)) {
      if (covers && !g.members.every((m) => covers.has(m.oid))) continue;
      groups.set(g.id, g);
    }
  }
  return planOfGroups([...groups.values()]);
}

/** The bytes of a pack: each member read (and verified) by `read`, end to end. */
export async function buildPack(group: PackGroup, read: (oid: Oid) => Promise<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const m of group.members) {
    const data = await read(m.oid);
    if (data.length !== m.size)
      throw new Error(`${m.oid}: ${data.length} bytes where its manifest says ${m.size}`);
    parts.push(data);
  }
  return Buffer.concat(parts, group.bytes);
}

/**
 * Splits a downloaded pack into its members, each verified against its oid. A pack of the wrong
 * length or with a member that does not match is an IntegrityError naming the pack: nothing of
 * it is returned.
 */
export function splitPack(remote: Remote, group: PackGroup, bytes: Buffer): Map<Oid, Buffer> {
  const damaged = (detail: string): IntegrityError =>
    new IntegrityError(
      formatProblem(
        `${remote.url}/${objectKey(group.id)}`,
        'remote pack does not match the files it holds',
        detail,
        'The remote copy is damaged: delete that pack and push again from a good cache (lockstep push).',
      ),
    );
  if (bytes.length !== group.bytes) throw damaged(`${bytes.length} bytes where ${group.bytes} were expected`);
  const out = new Map<Oid, Buffer>();
  let at = 0;
  for (const m of group.members) {
    const data = bytes.subarray(at, at + m.size);
    at += m.size;
    if (sha256Hex(data) !== m.oid) throw damaged(`member ${m.oid}`);
    out.set(m.oid, data);
  }
  return out;
}

/**
 * Downloads pack `group` to `tmp` (removed after) and returns its members, verified. The remote
 * checks its own transfer hashes (crc32c, md5) on the way.
 */
export async function fetchPack(
  remote: Remote,
  group: PackGroup,
  tmp: string,
  options: TransferOptions = {},
): Promise<Map<Oid, Buffer>> {
  try {
    await remote.get(group.id, tmp, options);
    return splitPack(remote, group, await fs.promises.readFile(tmp));
  } finally {
    await fs.promises.rm(tmp, { force: true });
  }
}

/**
 * The members `wanted` of pack `group`, each verified: from the pack, or, when the pack cannot
 * be read (damaged, or deleted since it was found), from loose copies of them on the remote (a
 * directory pushed loose before packs, then in packs). Without loose copies of all of them, the
 * pack's own failure (one naming the pack when it is gone). `tmp` is removed after.
 */
export async function fetchMembers(
  remote: Remote,
  group: PackGroup,
  tmp: string,
  wanted: Oid[],
  options: TransferOptions = {},
): Promise<Map<Oid, Buffer>> {
  try {
    return await fetchPack(remote, group, tmp, options);
  } catch (err) {
    options.signal?.throwIfAborted();
    const loose = await remote.has(wanted, options).catch(() => new Set<Oid>());
    if (wanted.length === 0 || !wanted.every((oid) => loose.has(oid))) {
      const there = await remote.has([group.id], options).catch(() => undefined);
      if (there && !there.has(group.id)) {
        throw new IntegrityError(
          formatProblem(
            `${remote.url}/${objectKey(group.id)}`,
            'remote pack is gone (deleted after it was found, by a gc --remote?)',
            undefined,
            'Push the directory again from a clone that has its files (lockstep push), then run the command again.',
          ),
        );
      }
      throw err;
    }
    const out = new Map<Oid, Buffer>();
    try {
      for (const oid of wanted) {
        await downloadVerified(remote, oid, tmp, options);
        out.set(oid, await fs.promises.readFile(tmp));
      }
    } finally {
      await fs.promises.rm(tmp, { force: true });
    }
    return out;
  }
}

/**
 * Which of `oids` the remote holds, loose or in a pack of `plan` (two rounds at most: the packs
 * and the objects outside them, then loose copies of what sits in packs the remote lacks).
 * `packs` is the set of the plan's packs found there.
 */
export async function remoteHoldings(
  remote: Remote,
  oids: Oid[],
  plan: PackPlan,
  options: TransferOptions = {},
): Promise<{ held: Set<Oid>; packs: Set<string>; loose: Set<Oid> }> {
  const unique = [...new Set(oids)];
  const packed = unique.filter((oid) => plan.memberOf.has(oid));
  const outside = unique.filter((oid) => !plan.memberOf.has(oid));
  const wantedPacks = [...new Set(packed.flatMap((oid) => plan.memberOf.get(oid)!.map((g) => g.id)))];
  const first = await remote.has([...outside, ...wantedPacks], options);
  const packs = new Set(wantedPacks.filter((id) => first.has(id)));
  const loose = new Set(outside.filter((oid) => first.has(oid)));
  const held = new Set(loose);
  const unpacked: Oid[] = [];
  for (const oid of packed) {
    if (plan.memberOf.get(oid)!.some((g) => packs.has(g.id))) held.add(oid);
    else unpacked.push(oid);
  }
  if (unpacked.length > 0) {
    for (const oid of await remote.has(unpacked, options)) {
      held.add(oid);
      loose.add(oid);
    }
  }
  return { held, packs, loose };
}

/**
 * Which of `oids` the remote holds, loose or packed: the packs are those of the manifests among
 * `oids` in the cache (a caller asking about a directory's files passes its manifest with them).
 */
export async function remoteHolds(
  cache: Cache,
  remote: Remote,
  oids: Oid[],
  options: TransferOptions & { manifests?: Oid[] } = {},
): Promise<Set<Oid>> {
  return (await remoteHoldings(remote, oids, planPacks(cache, options.manifests ?? oids), options)).held;
}
