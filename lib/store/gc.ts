/**
 * Garbage collection of the local cache. Keeps every object referenced by the working-tree
 * lockfile and by the lockfile at every branch, every tag and the last N commits of HEAD
 * (directory manifests expand to their files); deletes the rest and stale temp files left by
 * killed processes. Run-cache entries whose outputs are collected are dropped with them. Plan
 * first: `dryRun` returns the same plan without deleting.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Oid } from '../types.ts';
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
  /** Run-cache entries (`.lockstep/runs/*.json`) dropped because their outputs are collected. */
  runEntries: number;
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

/** Run-cache entry files whose outs need any object in `gone` (or one already missing). */
async function staleRunEntries(repo: Repo, cache: Cache, gone: Set<Oid>): Promise<string[]> {
  const dir = path.join(repo.stateDir, 'runs');
  if (!fs.existsSync(dir)) return [];
  const stale: string[] = [];
  for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const file = path.join(dir, name);
    let outs: ArtifactRef[];
    try {
      outs = (JSON.parse(fs.readFileSync(file, 'utf8')) as { outs?: ArtifactRef[] }).outs ?? [];
    } catch {
      continue; // Not ours to judge; the runner validates its entries.
    }
    const needs = async (ref: ArtifactRef): Promise<boolean> => {
      if (gone.has(ref.hash) || !cache.hasSync(ref.hash)) return true;
      if (!ref.dir) return false;
      try {
        return (await readManifest(cache, ref)).entries.some(
          (e) => gone.has(e.sha256) || !cache.hasSync(e.sha256),
        );
      } catch {
        return true;
      }
    };
    for (const ref of outs) {
      if (await needs(ref)) {
        stale.push(file);
        break;
      }
    }
  }
  return stale;
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
    deleted.push({ oid, size: fs.statSync(cache.objectPath(oid)).size });
  }
  // Run-cache entries that would point at deleted objects go first, so a restore never finds
  // half its outputs gone (manifests are read before anything is deleted).
  const goneSet = new Set(deleted.map((d) => d.oid));
  const staleRuns = await staleRunEntries(repo, cache, goneSet);
  if (!options.dryRun) {
    for (const file of staleRuns) fs.rmSync(file, { force: true });
    for (const { oid } of deleted) fs.rmSync(cache.objectPath(oid), { force: true });
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
    runEntries: staleRuns.length,
    dryRun: Boolean(options.dryRun),
  };
}
