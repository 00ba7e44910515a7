/**
 * Garbage collection of the local cache. Keeps every object referenced by the lockfile of a
 * root (gc-roots.ts: the workspace, branches, tags, the last N commits of HEAD, experiments;
 * directory manifests expand to their files); deletes the rest and stale temp files left by
 * killed processes. Run-cache entries whose outputs are collected are dropped with them. Plan
 * first: `dryRun` returns the same plan without deleting.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Lockfile, Oid } from '../types.ts';
import type { Output } from '../output.ts';
import {
  LOCKFILE_NAME,
  readCommittedLockfile,
  readLockfile,
  type CommittedLockfileOptions,
} from '../lockfile.ts';
import { withGitReader } from '../git-reader.ts';
import { listGcRoots, ROOT_KINDS, type GcRoot, type RootKind, type RootOptions } from './gc-roots.ts';
import { Cache } from './cache.ts';
import { lockfileArtifacts, readManifest } from './artifacts.ts';
import { isOid } from './remote.ts';
import { liveWriters } from './in-flight.ts';

export interface GcOptions extends RootOptions {
  /** Report what would be deleted without deleting (default false). */
  dryRun?: boolean;
  out?: Output;
  /** Temp files older than this are removed (default 1 hour). */
  staleTempMs?: number;
}

export interface GcPlan {
  /** Revisions whose lockfiles were read (plus "workspace"), with the kind of each. */
  roots: GcRoot[];
  /** What each kind of root keeps (see RootKindSummary). */
  keptBy: RootKindSummary[];
  /** Experiments whose artifacts were not kept (`--no-experiments`, `--exp-older-than`). */
  droppedExperiments: string[];
  kept: number;
  deleted: Array<{ oid: Oid; size: number }>;
  bytes: number;
  staleTemps: number;
  /** Run-cache entries (`.lockstep/runs/*.json`) dropped because their outputs are collected. */
  runEntries: number;
  /**
   * Writers still running (`exp run`, queue workers; see in-flight.ts) and the unreferenced
   * objects kept because they entered the cache after the oldest of them started.
   */
  inFlight: { writers: string[]; objects: number };
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

/** What the roots of one kind keep. */
export interface RootKindSummary {
  kind: RootKind;
  /** Names of the roots of this kind. */
  roots: string[];
  /** Cache objects their lockfiles reference. */
  objects: number;
  /** Of those, objects no root of another kind references (what leaving the kind out frees). */
  only: number;
}

/**
 * How errors name the lockfile a root keeps (`<root>:artifacts.lock.yaml`) and what to do about a
 * malformed one: gc stops rather than guess what it pins, and a commit cannot be edited.
 */
function rootLockfileLabels(root: GcRoot): CommittedLockfileOptions {
  const label = `${root.name}:${LOCKFILE_NAME}`;
  const repair: Record<Exclude<RootKind, 'workspace'>, string> = {
    branch: `Commit a repaired ${LOCKFILE_NAME} on branch ${root.name}, or delete the branch.`,
    tag: `Delete the tag (git tag -d ${root.name}) or move it to a commit whose lockfile parses.`,
    commit: `Commit a repaired ${LOCKFILE_NAME} on top, or pass a smaller --keep-last.`,
    experiment: `Remove the experiment (lockstep exp remove ${root.name}), or pass --no-experiments.`,
  };
  return { label, repair: root.kind === 'workspace' ? undefined : repair[root.kind] };
}

/** Oids referenced by the lockfiles of the roots, per kind, and the roots themselves. */
export async function referencedObjects(
  repo: Repo,
  options: RootOptions = {},
): Promise<{
  oids: Set<Oid>;
  roots: GcRoot[];
  byKind: Map<RootKind, Set<Oid>>;
  droppedExperiments: string[];
}> {
  const { roots, droppedExperiments } = await listGcRoots(repo, options);
  const cache = new Cache(repo);
  // Many roots share a commit and most lockfiles share most artifacts: read each commit's
  // lockfile and each manifest once.
  const perCommit = new Map<string, Oid[]>();
  const manifests = new Map<Oid, Oid[]>();
  const objectsOf = async (lock: Lockfile): Promise<Oid[]> => {
    const oids: Oid[] = [];
    for (const ref of lockfileArtifacts(lock)) {
      oids.push(ref.hash);
      if (!ref.dir) continue;
      let entries = manifests.get(ref.hash);
      if (!entries) {
        entries = [];
        if (cache.hasSync(ref.hash)) {
          try {
            entries = (await readManifest(cache, ref)).entries.map((e) => e.sha256);
          } catch {
            // A corrupt manifest was quarantined by the read; its files stay unreferenced only
            // if no other manifest lists them, and pull restores everything from the remote.
          }
        }
        manifests.set(ref.hash, entries);
      }
      oids.push(...entries);
    }
    return oids;
  };
  const byKind = new Map<RootKind, Set<Oid>>();
  await withGitReader(repo.root, async (reader) => {
    for (const root of roots) {
      let oids: Oid[];
      if (!root.commit) oids = await objectsOf(readLockfile(repo));
      else if (perCommit.has(root.commit)) oids = perCommit.get(root.commit)!;
      else {
        const committed = await readCommittedLockfile(reader, root.commit, rootLockfileLabels(root));
        oids = committed ? await objectsOf(committed.lockfile) : [];
        perCommit.set(root.commit, oids);
      }
      const set = byKind.get(root.kind) ?? new Set<Oid>();
      for (const oid of oids) set.add(oid);
      byKind.set(root.kind, set);
    }
  });
  const all = new Set<Oid>();
  for (const set of byKind.values()) for (const oid of set) all.add(oid);
  return { oids: all, roots, byKind, droppedExperiments };
}

/** Per kind: its roots, the cached objects it keeps and those only it keeps. */
function summarizeKinds(
  roots: GcRoot[],
  byKind: Map<RootKind, Set<Oid>>,
  cached: (oid: Oid) => boolean,
): RootKindSummary[] {
  return ROOT_KINDS.filter((k) => roots.some((r) => r.kind === k)).map((kind) => {
    const mine = [...(byKind.get(kind) ?? [])].filter(cached);
    const others = [...byKind].filter(([k]) => k !== kind).map(([, s]) => s);
    return {
      kind,
      roots: roots.filter((r) => r.kind === kind).map((r) => r.name),
      objects: mine.length,
      only: mine.filter((oid) => !others.some((s) => s.has(oid))).length,
    };
  });
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
  const { oids: keep, roots, byKind, droppedExperiments } = await referencedObjects(repo, options);
  const cache = new Cache(repo);
  const deleted: Array<{ oid: Oid; size: number }> = [];
  let kept = 0;
  const cached = listCache(cache);
  // Read after the listing: a writer that put a listed object in the cache registered before.
  // Its objects are kept by when they entered the cache (ctime: a rename or chmod sets it, a
  // moved-in file's old mtime does not count); 2 s of slack covers timestamp granularity.
  const writers = liveWriters(repo);
  const protectFrom = writers.length > 0 ? writers[0]!.started - 2000 : Infinity;
  let inFlightObjects = 0;
  for (const oid of cached) {
    if (keep.has(oid)) {
      kept++;
      continue;
    }
    let st: fs.Stats;
    try {
      st = fs.statSync(cache.objectPath(oid));
    } catch {
      continue; // Quarantined or removed meanwhile.
    }
    if (st.ctimeMs >= protectFrom) {
      kept++;
      inFlightObjects++;
      continue;
    }
    deleted.push({ oid, size: st.size });
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
  const present = new Set(listCache(cache));
  return {
    roots,
    keptBy: summarizeKinds(roots, byKind, (oid) => present.has(oid)),
    droppedExperiments,
    kept,
    deleted,
    bytes: deleted.reduce((a, d) => a + d.size, 0),
    staleTemps,
    runEntries: staleRuns.length,
    inFlight: { writers: writers.map((w) => w.what), objects: inFlightObjects },
    dryRun: Boolean(options.dryRun),
  };
}
