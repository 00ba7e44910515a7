/**
 * Listing and existence checks against a content-addressed bucket (gcs-remote.ts holds the rest).
 * Object ids are sha256 digests, so keys spread uniformly over `sha256/00/...` ..
 * `sha256/ff/...`: one listed page tells how dense the remote is, which lets `has()` pick the
 * cheaper of listing the rest (split into key ranges listed in parallel) or asking per object.
 */
import pLimit from 'p-limit';
import type { Bucket, File } from '@google-cloud/storage';
import type { Oid } from '../types.ts';
import { isOid, objectKey, type RemoteObjectInfo, type TransferOptions } from './remote.ts';
import { statusOf, toGcsError } from './gcs-errors.ts';

/** Objects per list page; GCS never returns more than 1,000 per request. */
export const PAGE_SIZE = 1000;

/** Position of `oid` in the key space, in [0, 1). */
export function keyFraction(oid: Oid): number {
  return parseInt(oid.slice(0, 13), 16) / 16 ** 13;
}

/** The 8-hex-digit oid prefix at fraction `f` of the key space. */
export function oidPrefixAt(f: number): string {
  const clamped = Math.min(Math.max(f, 0), 1 - 2 ** -32);
  return Math.floor(clamped * 16 ** 8)
    .toString(16)
    .padStart(8, '0');
}

export interface KeyRange {
  /** Inclusive lower bound: an oid prefix. */
  from: string;
  /** Exclusive upper bound: an oid prefix; undefined for the end of the key space. */
  to?: string;
  /** Wanted oids that fall in this range, sorted. */
  oids: Oid[];
}

/**
 * Decides how to resolve `unresolved` (sorted oids after `afterOid`) once the first page covered
 * the key space up to `afterOid`. Returns `'ask'` when asking per object costs fewer requests than
 * listing the rest, else the key ranges to list in parallel (empty ranges are dropped).
 */
export function planRemaining(
  afterOid: Oid,
  pagesSoFar: number,
  unresolved: Oid[],
  concurrency: number,
): 'ask' | KeyRange[] {
  const covered = Math.max(keyFraction(afterOid), 1e-9);
  const remainingPages = Math.ceil((pagesSoFar * (1 - covered)) / covered);
  if (unresolved.length <= remainingPages) return 'ask';
  // Ranges of about two pages each keep the rounding waste (a last, partly filled page per
  // range) small while still listing in parallel.
  const count = Math.max(1, Math.min(concurrency, Math.ceil(remainingPages / 2)));
  const ranges: KeyRange[] = [];
  for (let i = 0; i < count; i++) {
    const lo = covered + ((1 - covered) * i) / count;
    const hi = covered + ((1 - covered) * (i + 1)) / count;
    ranges.push({
      from: i === 0 ? afterOid : oidPrefixAt(lo),
      to: i === count - 1 ? undefined : oidPrefixAt(hi),
      oids: [],
    });
  }
  let r = 0;
  for (const oid of unresolved) {
    while (ranges[r].to !== undefined && oid >= ranges[r].to!) r++;
    ranges[r].oids.push(oid);
  }
  return ranges.filter((range) => range.oids.length > 0);
}

/** What listing and existence checks need of the remote they ask. */
export interface ListingSource {
  bucket: Bucket;
  url: string;
  /** Object-name prefix ending in '/', or '' for the bucket root. */
  root: string;
  concurrency: number;
  /** `has()` asks per object up to this many ids, and lists above it. */
  perObjectThreshold: number;
  keyOf(oid: Oid): string;
  where(oid?: Oid): string;
  /** Records an object's last change as a response showed it (for `touch`). */
  noteUpdated(oid: Oid, updated: unknown): void;
}

/** One listed page: the oids in it, their details, and the token of the next page if any. */
export interface ListedPage {
  oids: Oid[];
  infos: RemoteObjectInfo[];
  nextPageToken?: string;
}

/** The two key spaces: objects (`sha256/`) and packs of small files (`packs/`, packs.ts). */
export type KeySpace = 'sha256' | 'packs';

/** The oid (or pack id) an object name under `root` stands for (undefined: neither). */
export function oidOfName(root: string, name: string, space: KeySpace = 'sha256'): Oid | undefined {
  if (!name.startsWith(`${root}${space}/`)) return undefined;
  const rest = name.slice(root.length + space.length + 1);
  const hex = rest.slice(0, 2) + rest.slice(3);
  if (rest[2] !== '/' || !isOid(hex)) return undefined;
  return space === 'packs' ? `pack-${hex}` : hex;
}

/**
 * Which of `oids` exist. Few ids: one metadata request each, in parallel. Many: list one page
 * to learn the remote's density, then either ask per object for the rest or list only the key
 * ranges that hold wanted ids, in parallel and stopping each range past its last wanted id.
 */
export async function hasObjects(
  src: ListingSource,
  oids: Oid[],
  options: TransferOptions,
): Promise<Set<Oid>> {
  const packs = [...new Set(oids.filter((oid) => oid.startsWith('pack-')))];
  const wanted = [...new Set(oids.filter((oid) => !oid.startsWith('pack-')))].sort();
  if (packs.length > 0) {
    const [inPacks, rest] = await Promise.all([
      hasPacks(src, packs, options),
      hasObjects(src, wanted, options),
    ]);
    for (const id of inPacks) rest.add(id);
    return rest;
  }
  if (wanted.length === 0) return new Set();
  if (wanted.length <= src.perObjectThreshold) return askEach(src, wanted, options);
  const wantedSet = new Set(wanted);
  const found = new Set<Oid>();
  const first = await listPage(src, {}, options);
  for (const oid of first.oids) if (wantedSet.has(oid)) found.add(oid);
  if (!first.nextPageToken) return found;
  // A first page of foreign names only says nothing about density: ask per object instead.
  if (first.oids.length === 0) return askEach(src, wanted, options);
  const last = first.oids[first.oids.length - 1];
  const unresolved = wanted.filter((oid) => oid > last);
  if (unresolved.length === 0) return found;
  const plan = planRemaining(last, 1, unresolved, src.concurrency);
  if (plan === 'ask') {
    for (const oid of await askEach(src, unresolved, options)) found.add(oid);
    return found;
  }
  const pool = pLimit(src.concurrency);
  await Promise.all(plan.map((range) => pool(() => listRange(src, range, wantedSet, found, options))));
  return found;
}

/**
 * Which of the pack ids `packs` exist. Packs are one per dozens of files, so a remote holds few:
 * one listed page of `packs/` usually answers all (a fresh or small remote), and the ids past
 * that page are asked for one by one.
 */
async function hasPacks(src: ListingSource, packs: string[], options: TransferOptions): Promise<Set<string>> {
  if (packs.length <= src.perObjectThreshold) return askEach(src, packs, options);
  const found = new Set<string>();
  const wanted = new Set(packs);
  const first = await listPage(src, {}, options, 'packs');
  for (const id of first.oids) if (wanted.has(id)) found.add(id);
  if (!first.nextPageToken) return found;
  const last = first.oids[first.oids.length - 1];
  const unresolved = packs.filter((id) => last === undefined || id > last);
  for (const id of await askEach(src, unresolved, options)) found.add(id);
  return found;
}

async function askEach(src: ListingSource, oids: Oid[], options: TransferOptions): Promise<Set<Oid>> {
  const pool = pLimit(src.concurrency);
  const found = new Set<Oid>();
  await Promise.all(
    oids.map((oid) =>
      pool(async () => {
        options.signal?.throwIfAborted();
        try {
          const [metadata] = await src.bucket.file(src.keyOf(oid)).getMetadata();
          found.add(oid);
          src.noteUpdated(oid, metadata.updated);
        } catch (err) {
          if (statusOf(err) === 404) return;
          throw toGcsError(err, src.where(oid), 'existence check');
        }
      }),
    ),
  );
  return found;
}

async function listRange(
  src: ListingSource,
  range: KeyRange,
  wanted: Set<Oid>,
  found: Set<Oid>,
  options: TransferOptions,
): Promise<void> {
  const lastWanted = range.oids[range.oids.length - 1];
  const query = {
    startOffset: src.root + objectKey(range.from.padEnd(3, '0')),
    ...(range.to ? { endOffset: src.root + objectKey(range.to) } : {}),
  };
  let pageToken: string | undefined;
  do {
    const page = await listPage(src, { ...query, pageToken }, options);
    for (const oid of page.oids) if (wanted.has(oid)) found.add(oid);
    const last = page.oids[page.oids.length - 1];
    // Names come sorted: once past the last wanted id, the rest of the range cannot matter.
    if (last !== undefined && last >= lastWanted) return;
    pageToken = page.nextPageToken;
  } while (pageToken);
}

/** One list request under `<prefix>/sha256/` (or `packs/`), asking only for names and the details listed. */
export async function listPage(
  src: ListingSource,
  query: { startOffset?: string; endOffset?: string; pageToken?: string },
  options: TransferOptions,
  space: KeySpace = 'sha256',
): Promise<ListedPage> {
  options.signal?.throwIfAborted();
  try {
    const [files, next] = await src.bucket.getFiles({
      prefix: `${src.root}${space}/`,
      autoPaginate: false,
      maxResults: PAGE_SIZE,
      fields: 'items(name,size,updated,generation,metageneration),nextPageToken',
      ...Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)),
    });
    const oids: Oid[] = [];
    const infos: RemoteObjectInfo[] = [];
    for (const file of files) {
      const oid = oidOfName(src.root, file.name, space);
      if (!oid) continue;
      oids.push(oid);
      // With `fields`, the client hands back the raw resources rather than File objects.
      const m = ((file as { metadata?: File['metadata'] }).metadata ?? file) as File['metadata'];
      src.noteUpdated(oid, m.updated);
      infos.push({
        oid,
        size: Number(m.size ?? 0),
        updated: Date.parse(String(m.updated ?? '')) || 0,
        version: `${m.generation}:${m.metageneration}`,
      });
    }
    const token = (next as { pageToken?: string } | null | undefined)?.pageToken;
    return token ? { oids, infos, nextPageToken: token } : { oids, infos };
  } catch (err) {
    throw toGcsError(err, `${src.url}/${space}/`, 'list');
  }
}
