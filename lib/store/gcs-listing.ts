/**
 * Planning existence checks against a content-addressed bucket. Object ids are sha256 digests, so
 * keys spread uniformly over `sha256/00/...` .. `sha256/ff/...`: one listed page tells how dense
 * the remote is, which lets `has()` pick the cheaper of listing the rest (split into key ranges
 * listed in parallel) or asking per object.
 */
import type { Oid } from '../types.ts';

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
