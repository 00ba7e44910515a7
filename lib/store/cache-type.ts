/**
 * `cache.type` in `.lockstep/config.yaml`: the ways `lockstep add` may put bytes into the cache,
 * tried in order (like DVC). Each is probed once per run on a scratch file next to the cache, so
 * an unsupported one (reflink on ext4, hardlink across file systems) falls through to the next.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Repo } from '../repo.ts';
import { readConfig, type CacheLink } from '../config.ts';
import { LockstepError, formatProblem } from '../errors.ts';
import { tempPathFor } from '../atomic.ts';

/** What DVC defaults to: a clone when the file system can, else a copy. */
export const DEFAULT_CACHE_TYPES: readonly CacheLink[] = ['reflink', 'copy'];

/** The configured order (default DEFAULT_CACHE_TYPES). */
export function readCacheTypes(repo: Repo): CacheLink[] {
  const type = readConfig(repo).cache?.type;
  if (type === undefined) return [...DEFAULT_CACHE_TYPES];
  return typeof type === 'string' ? [type] : [...new Set(type)];
}

/** True when `link` works from `fromDir` into `toDir` (tried on a scratch file, then removed). */
function isLinkSupported(link: CacheLink, fromDir: string, toDir: string): boolean {
  if (link === 'copy') return true;
  // Temp names the sweeps know: a kill mid-probe leaves files `lockstep gc` and the next
  // atomic write in `fromDir` clear away.
  const src = tempPathFor(path.join(fromDir, 'cache-type-probe'), fromDir);
  const dest = path.join(toDir, `${process.pid}-probe-${randomBytes(8).toString('hex')}`);
  fs.mkdirSync(fromDir, { recursive: true });
  fs.mkdirSync(toDir, { recursive: true });
  fs.writeFileSync(src, 'probe');
  try {
    if (link === 'hardlink') fs.linkSync(src, dest);
    else fs.copyFileSync(src, dest, fs.constants.COPYFILE_FICLONE_FORCE);
    return true;
  } catch {
    return false;
  } finally {
    fs.rmSync(src, { force: true });
    fs.rmSync(dest, { force: true });
  }
}

/**
 * The first of `types` that works between the repository and its cache temp directory
 * `cacheTmp`. Throws when none does (only possible without `copy` in the list).
 */
export function chooseCacheLink(repo: Repo, types: CacheLink[], cacheTmp: string): CacheLink {
  for (const link of types) if (isLinkSupported(link, repo.tmpDir, cacheTmp)) return link;
  throw new LockstepError(
    formatProblem(
      '.lockstep/config.yaml',
      'no cache.type this file system supports',
      types.join(','),
      'Add copy to cache.type (e.g. cache: {type: [reflink, hardlink, copy]}).',
    ),
  );
}
