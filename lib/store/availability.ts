/**
 * Before a command checks artifacts out it makes sure it can finish: every object the artifacts
 * need (files, directory manifests and the files they list) is brought into the local cache,
 * from the remote when the cache lacks it, and what neither holds is reported per artifact. A
 * caller that gets a non-empty `missing` refuses before it changes the workspace, so no command
 * leaves outputs that disagree with the lockfile it wrote.
 */
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Oid } from '../types.ts';
import type { Output } from '../output.ts';
import type { Remote } from './remote.ts';
import { IntegrityError } from '../errors.ts';
import { Cache } from './cache.ts';
import { readManifest } from './artifacts.ts';
import { pullObjects } from './transfer.ts';

export interface UnavailableArtifact {
  path: string;
  hash: Oid;
  /** Objects neither the cache nor the remote holds (an absent manifest counts once). */
  objects: number;
}

export interface FetchArtifactsOptions {
  /** Where objects the cache lacks come from (default: none, the cache must hold everything). */
  remote?: Remote;
  out?: Output;
  signal?: AbortSignal;
}

/**
 * Brings every object `refs` need into the local cache (see the module comment). Manifests come
 * first, since their entries say which file objects a directory needs.
 * @returns the artifacts that cannot be restored, and how many objects were downloaded.
 */
export async function fetchArtifacts(
  repo: Repo,
  refs: ArtifactRef[],
  options: FetchArtifactsOptions = {},
): Promise<{ missing: UnavailableArtifact[]; downloaded: number }> {
  const cache = new Cache(repo, { out: options.out });
  const { remote } = options;
  let downloaded = 0;
  const pull = async (oids: Oid[], manifests: Oid[]): Promise<void> => {
    const absent = [...new Set(oids)].filter((oid) => !cache.hasSync(oid));
    if (!remote || absent.length === 0) return;
    // All of them: the directories' files come from their packs (packs.ts).
    downloaded += (
      await pullObjects(repo, remote, oids, { out: options.out, signal: options.signal, manifests })
    ).transferred;
  };
  await pull(
    refs.map((r) => r.hash),
    [],
  );
  const needs = new Map<ArtifactRef, Oid[]>();
  for (const ref of refs) {
    if (!ref.dir || !cache.hasSync(ref.hash)) {
      needs.set(ref, [ref.hash]);
      continue;
    }
    try {
      // The cache carries the remote so a corrupt manifest is quarantined and fetched again.
      const manifest = await readManifest(new Cache(repo, { remote, out: options.out }), ref);
      needs.set(ref, [ref.hash, ...new Set(manifest.entries.map((e) => e.sha256))]);
    } catch {
      needs.set(ref, [ref.hash]);
    }
  }
  await pull(
    [...needs.values()].flat(),
    [...needs.keys()].filter((r) => r.dir && cache.hasSync(r.hash)).map((r) => r.hash),
  );
  const missing: UnavailableArtifact[] = [];
  for (const [ref, oids] of needs) {
    const absent = oids.filter((oid) => !cache.hasSync(oid)).length;
    if (absent > 0) missing.push({ path: ref.path, hash: ref.hash, objects: absent });
  }
  return { missing, downloaded };
}

/**
 * The one-line error for artifacts a command must restore but cannot: `what` names the command
 * and its subject, `fix` says how to get the objects back.
 */
export function unavailableError(
  what: string,
  missing: UnavailableArtifact[],
  remote: Remote | undefined,
  fix: string,
): IntegrityError {
  const where = remote ? `the local cache and ${remote.url}` : 'the local cache (no remote configured)';
  const paths = missing.map((m) => m.path).join(', ');
  return new IntegrityError(`${what}: ${missing.length} output(s) missing from ${where} "${paths}". ${fix}`);
}

/** fetchArtifacts, then unavailableError when anything is missing. */
export async function ensureArtifacts(
  repo: Repo,
  refs: ArtifactRef[],
  options: FetchArtifactsOptions & { what: string; fix: string },
): Promise<{ downloaded: number }> {
  const { missing, downloaded } = await fetchArtifacts(repo, refs, options);
  if (missing.length > 0) throw unavailableError(options.what, missing, options.remote, options.fix);
  return { downloaded };
}
