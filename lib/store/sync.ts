/**
 * Push and pull of everything the current lockfile references (tracked data and every stage's
 * outs, including the files inside directory manifests), then checkout of what is not current.
 */
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Lockfile, Oid } from '../types.ts';
import type { Output } from '../output.ts';
import type { Remote } from './remote.ts';
import { readLockfile } from '../lockfile.ts';
import { Cache } from './cache.ts';
import { artifactObjects, dirsOf, isArtifactCurrent, lockfileArtifacts, readManifest } from './artifacts.ts';
import { checkoutArtifact } from './checkout.ts';
import { pullObjects, pushObjects } from './transfer.ts';
import { ConfigError, IntegrityError, formatProblem } from '../errors.ts';
import { defaultRemote } from './remote-config.ts';
import { openRemote } from './open-remote.ts';

export interface SyncOptions {
  /** Remote URL or path; default: the configured remote. */
  remote?: string;
  /** Concurrent transfers (default 8). */
  jobs?: number;
  out?: Output;
  /** Directory a relative `remote` resolves against (default: repository root). */
  cwd?: string;
  signal?: AbortSignal;
}

export interface PushSummary {
  remote: string;
  transferred: number;
  skipped: number;
  bytes: number;
}

export interface PullSummary extends PushSummary {
  missing: Oid[];
  checkedOut: string[];
}

/** The remote named by `--remote`, else the configured one; a ConfigError when there is none. */
export async function resolveRemote(repo: Repo, url: string | undefined, cwd?: string): Promise<Remote> {
  if (url) return openRemote(url, { baseDir: cwd ?? repo.root });
  const remote = await defaultRemote(repo);
  if (!remote) {
    throw new ConfigError(
      formatProblem(
        '.lockstep/config.yaml: remote',
        'no remote configured',
        undefined,
        'Set remote and remotes.<name>.url, LOCKSTEP_REMOTE, or pass --remote.',
      ),
    );
  }
  return remote;
}

/** Every artifact in `lock`, de-duplicated by path and hash. */
function uniqueRefs(lock: Lockfile): ArtifactRef[] {
  const seen = new Map<string, ArtifactRef>();
  for (const ref of lockfileArtifacts(lock)) seen.set(`${ref.path}\0${ref.hash}`, ref);
  return [...seen.values()];
}

/** Uploads every object the current lockfile needs that the remote lacks. */
export async function pushLockfile(repo: Repo, options: SyncOptions = {}): Promise<PushSummary> {
  const remote = await resolveRemote(repo, options.remote, options.cwd);
  const cache = new Cache(repo, { out: options.out });
  const oids: Oid[] = [];
  const refs = uniqueRefs(readLockfile(repo));
  for (const ref of refs) {
    const objects = await artifactObjects(repo, ref, { cache });
    for (const oid of objects) {
      if (!cache.hasSync(oid)) throw cache.missingError(oid, ref.path, false);
    }
    oids.push(...objects);
  }
  const r = await pushObjects(repo, remote, oids, { ...options, manifests: dirsOf(refs) });
  return { remote: remote.url, ...r };
}

/** Downloads what the current lockfile needs, then checks out every path that is not current. */
export async function pullLockfile(
  repo: Repo,
  options: SyncOptions & { checkout?: boolean } = {},
): Promise<PullSummary> {
  const remote = await resolveRemote(repo, options.remote, options.cwd);
  const refs = uniqueRefs(readLockfile(repo));
  // Manifests first: their entries say which file objects the directories need.
  const first = await pullObjects(
    repo,
    remote,
    refs.map((r) => r.hash),
    { ...options, manifests: [] },
  );
  const cache = new Cache(repo, { remote, out: options.out });
  const entries: Oid[] = [];
  const manifests = new Set<Oid>();
  for (const ref of refs) {
    if (!ref.dir || first.missing.includes(ref.hash)) continue;
    // The manifest with its files: they come from its packs where the remote has them.
    entries.push(ref.hash, ...(await readManifest(cache, ref)).entries.map((e) => e.sha256));
    manifests.add(ref.hash);
  }
  const second = await pullObjects(repo, remote, entries, { ...options, manifests: [...manifests] });
  const missing = [...first.missing, ...second.missing];
  if (missing.length > 0) {
    const ref = refs.find((r) => missing.includes(r.hash)) ?? refs.find((r) => r.dir);
    throw new IntegrityError(
      formatProblem(
        ref?.path ?? remote.url,
        `${missing.length} object(s) missing on the remote`,
        missing[0],
        `Push them from a clone that has them (lockstep push), then pull again from ${remote.url}.`,
      ),
    );
  }
  const checkedOut: string[] = [];
  if (options.checkout !== false) {
    for (const ref of refs) {
      if (await isArtifactCurrent(repo, ref)) continue;
      await checkoutArtifact(repo, ref, { remote, out: options.out });
      checkedOut.push(ref.path);
    }
  }
  return {
    remote: remote.url,
    transferred: first.transferred + second.transferred,
    // The manifests passed again with their files were counted by the first pull.
    skipped: first.skipped + second.skipped - Math.min(manifests.size, second.skipped),
    bytes: first.bytes + second.bytes,
    missing,
    checkedOut,
  };
}
