/**
 * The checks a promotion must pass, each returning a refusal reason or nothing. Ordered
 * cheapest first; `planPromotion` runs them all so the user sees every reason at once.
 */
import { gitClient } from '../git-client.ts';
import type { Repo } from '../repo.ts';
import { Cache } from '../store/cache.ts';
import type { Remote } from '../store/remote.ts';
import { readManifest } from '../registry/fetch.ts';
import type { ArtifactRef, Lockfile, Oid } from '../types.ts';

/** One check's outcome. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** True when `ancestor` is an ancestor of (or equal to) `descendant`. */
export async function isAncestor(root: string, ancestor: string, descendant: string): Promise<boolean> {
  // `merge-base --is-ancestor` answers only by exit code, which simple-git does not surface
  // reliably; the merge base of the two equals `ancestor` exactly when it is one.
  const base = await gitClient(root)
    .raw(['merge-base', ancestor, descendant])
    .then((s) => s.trim())
    .catch(() => '');
  const full = (await gitClient(root).raw(['rev-parse', ancestor])).trim();
  return base !== '' && base === full;
}

/** Commits in `a` that are not in `b`. */
export async function countAhead(root: string, a: string, b: string): Promise<number> {
  const out = await gitClient(root).raw(['rev-list', '--count', `${b}..${a}`]);
  return Number(out.trim());
}

/** Every artifact a lockfile pins (tracked data and stage outs), deduplicated by hash. */
export function pinnedArtifacts(lockfile: Lockfile): ArtifactRef[] {
  const seen = new Map<string, ArtifactRef>();
  for (const [p, v] of Object.entries(lockfile.data)) seen.set(v.hash, { path: p, ...v });
  for (const entry of Object.values(lockfile.stages)) for (const out of entry.outs) seen.set(out.hash, out);
  return [...seen.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
}

/**
 * Every object id the artifacts need (directory manifests are read, from the remote when they
 * are not in the cache). Throws IntegrityError when a manifest is in neither place.
 */
export async function objectsOf(repo: Repo, refs: ArtifactRef[], remote?: Remote): Promise<Oid[]> {
  const oids = new Set<Oid>();
  for (const ref of refs) {
    oids.add(ref.hash);
    if (!ref.dir) continue;
    const manifest = await readManifest(repo, ref, { remote });
    for (const e of manifest.entries) oids.add(e.sha256);
  }
  return [...oids];
}

/**
 * Verifies that the stored objects match the lockfile: every object of `model` hashes to its
 * id (a verified read), and every directory manifest agrees with the lockfile's size and count.
 */
export async function checkStoredMatchesLockfile(
  repo: Repo,
  refs: ArtifactRef[],
  model: ArtifactRef,
  remote?: Remote,
): Promise<Check> {
  const cache = new Cache(repo, { remote });
  try {
    for (const ref of refs) {
      if (!ref.dir) {
        if (ref === model || ref.hash === model.hash) {
          const bytes = await cache.readBytes(ref.hash);
          if (bytes.length !== ref.size)
            throw new Error(`${ref.path}: ${bytes.length} bytes stored, lockfile says ${ref.size}`);
        }
        continue;
      }
      const manifest = await readManifest(repo, ref, { remote });
      const size = manifest.entries.reduce((s, e) => s + e.size, 0);
      if (manifest.entries.length !== ref.nfiles || size !== ref.size) {
        throw new Error(
          `${ref.path}: stored manifest has ${manifest.entries.length} files / ${size} bytes, lockfile says ${ref.nfiles} / ${ref.size}`,
        );
      }
      if (ref.hash === model.hash) {
        for (const e of manifest.entries) {
          const bytes = await cache.readBytes(e.sha256, { manifest: ref.hash });
          if (bytes.length !== e.size)
            throw new Error(`${ref.path}/${e.path}: size ${bytes.length}, manifest says ${e.size}`);
        }
      }
    }
    return {
      name: 'stored objects match the lockfile',
      ok: true,
      detail: `${refs.length} artifacts verified`,
    };
  } catch (err) {
    return {
      name: 'stored objects match the lockfile',
      ok: false,
      detail: `${(err as Error).message.split('\n')[0]}`,
    };
  }
}
