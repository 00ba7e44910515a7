/**
 * Garbage collection of the local cache. Keeps every object referenced by the working-tree
 * lockfile and by the lockfile at every branch, every tag and the last N commits of HEAD
 * (directory manifests expand to their files); deletes the rest and stale temp files left by
 * killed processes. Plan first: `dryRun` returns the same plan without deleting.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { Oid } from '../types.ts';
import type { Output } from '../output.ts';
import { parseLockfile, readLockfile } from '../lockfile.ts';
import { currentCommit, listRefs, readFileAtRev, recentCommits } from '../git.ts';
import { Cache } from './cache.ts';
import { lockfileArtifacts, readManifest } from './artifacts.ts';
import { isOid } from './remote.ts';

export interface GcOptions {
  /** Commits of HEAD whose lockfiles are kept (default 10). */
  keepLast?: number;
  /** Report what would be deleted without deleting (default false). */
  dryRun?: boolean;
  out?: Output;
  /** Temp files older than this are removed (default 1 hour). */
  staleTempMs?: number;
}

export interface GcPlan {
  /** Revisions whose lockfiles were read (plus "workspace"). */
  roots: string[];
  kept: number;
  deleted: Array<{ oid: Oid; size: number }>;
  bytes: number;
  staleTemps: number;
  dryRun: boolean;
}

/** Every object id in the cache. */
function listCache(cache: Cache): Oid[] {
  const base = path.join(cache.root, 'sha256');
  if (!fs.existsSync(base)) return [];
  const oids: Oid[] = [];
  for (const prefix of fs.readdirSync(base)) {
    for (const rest of fs.readdirSync(path.join(base, prefix))) {
      if (isOid(prefix + rest)) oids.push(prefix + rest);
    }
  }
  return oids.sort();
}

/** Oids referenced by lockfiles at the kept revisions, and the names of those revisions. */
export async function referencedObjects(
  repo: Repo,
  keepLast: number,
): Promise<{ oids: Set<Oid>; roots: string[] }> {
  const texts: Array<[string, string]> = [];
  const roots: string[] = ['workspace'];
  const lockRel = path.relative(repo.root, repo.lockfilePath).split(path.sep).join('/');
  const revs = new Map<string, string>();
  // Outside git only the workspace lockfile counts; inside it, a git failure must abort gc
  // rather than treat every branch's objects as garbage.
  if (fs.existsSync(path.join(repo.root, '.git'))) {
    for (const ref of await listRefs(repo.root)) revs.set(ref.commit, ref.ref);
    // Before the first commit there is no HEAD history to keep.
    const head = await currentCommit(repo.root);
    for (const c of head ? await recentCommits(repo.root, keepLast) : []) {
      if (!revs.has(c.commit)) revs.set(c.commit, c.commit.slice(0, 12));
    }
  }
  for (const [commit, name] of revs) {
    const text = await readFileAtRev(repo.root, commit, lockRel);
    roots.push(name);
    if (text !== undefined) texts.push([name, text]);
  }
  const cache = new Cache(repo);
  const oids = new Set<Oid>();
  const lockfiles = [
    readLockfile(repo),
    ...texts.map(([name, text]) => parseLockfile(text, `${name}:${lockRel}`)),
  ];
  const seenManifests = new Set<Oid>();
  for (const lock of lockfiles) {
    for (const ref of lockfileArtifacts(lock)) {
      oids.add(ref.hash);
      if (!ref.dir || seenManifests.has(ref.hash)) continue;
      seenManifests.add(ref.hash);
      if (!cache.hasSync(ref.hash)) continue; // Nothing local to keep for it.
      try {
        for (const e of (await readManifest(cache, ref)).entries) oids.add(e.sha256);
      } catch {
        // A corrupt manifest was quarantined by the read; its files stay unreferenced only if
        // no other manifest lists them, and pull restores everything from the remote.
      }
    }
  }
  return { oids, roots };
}

/** Plans (and unless `dryRun`, performs) the collection. */
export async function collectGarbage(repo: Repo, options: GcOptions = {}): Promise<GcPlan> {
  const keepLast = options.keepLast ?? 10;
  const { oids: keep, roots } = await referencedObjects(repo, keepLast);
  const cache = new Cache(repo);
  const deleted: Array<{ oid: Oid; size: number }> = [];
  let kept = 0;
  for (const oid of listCache(cache)) {
    if (keep.has(oid)) {
      kept++;
      continue;
    }
    const size = fs.statSync(cache.objectPath(oid)).size;
    deleted.push({ oid, size });
    if (!options.dryRun) fs.rmSync(cache.objectPath(oid), { force: true });
  }
  let staleTemps = 0;
  const tmpDir = path.join(cache.root, 'tmp');
  const cutoff = Date.now() - (options.staleTempMs ?? 3_600_000);
  if (fs.existsSync(tmpDir)) {
    for (const name of fs.readdirSync(tmpDir)) {
      const p = path.join(tmpDir, name);
      if (fs.statSync(p).mtimeMs < cutoff) {
        staleTemps++;
        if (!options.dryRun) fs.rmSync(p, { force: true });
      }
    }
  }
  return {
    roots,
    kept,
    deleted,
    bytes: deleted.reduce((a, d) => a + d.size, 0),
    staleTemps,
    dryRun: Boolean(options.dryRun),
  };
}
