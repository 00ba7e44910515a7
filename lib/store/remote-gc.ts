/**
 * Retention on the remote (`lockstep gc --remote`). Keeps every object referenced by the
 * lockfiles of: each environment branch over its last N commits (its deploys), every tag, the
 * last N commits of the default branch, every experiment ref (shared ones included), and the
 * workspace. Directory artifacts keep their manifest, every file it lists and the packs of its
 * small files (manifests missing from the cache are pulled first, verified).
 *
 * Deletes only what is unreferenced AND unchanged for the grace period (default 24 h), with a
 * delete conditional on the version the listing saw. Together with pushes marking objects they
 * find already there (Remote.touch), an object a concurrent push uploaded or relied on is never
 * deleted before the lockfile that references it lands. A dry run (the default) deletes nothing.
 */
import fs from 'node:fs';
import path from 'node:path';
import pLimit from 'p-limit';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Lockfile, Oid } from '../types.ts';
import type { Output } from '../output.ts';
import { LockstepError, formatProblem } from '../errors.ts';
import { LOCKFILE_NAME, readCommittedLockfile, readLockfile } from '../lockfile.ts';
import { recentCommits, revExists } from '../git.ts';
import { withGitReader } from '../git-reader.ts';
import { ENVIRONMENTS } from '../environment/policy.ts';
import { environmentBranch } from '../environment/refs.ts';
import { gitClient } from '../git-client.ts';
import type { Remote, RemoteObjectInfo } from './remote.ts';
import { Cache } from './cache.ts';
import { lockfileArtifacts, readManifest } from './artifacts.ts';
import { pullObjects } from './transfer.ts';
import { packGroups } from './packs.ts';
import { EXPERIMENT_REFS } from './gc-roots.ts';

export interface RemoteGcOptions {
  /** Commits kept per environment branch and of the default branch (default 10). */
  keepLast?: number;
  /** Unreferenced objects changed more recently than this are kept (default 24 h). */
  graceMs?: number;
  /** Delete (default false: report only). */
  apply?: boolean;
  /** The default branch (default: origin/HEAD's target, else main, else master). */
  defaultBranch?: string;
  out?: Output;
  signal?: AbortSignal;
  /** "Now" for the grace rule (tests pin it). */
  now?: number;
  /** Called after the listing, before any delete (tests run a concurrent push here). */
  beforeDelete?: () => Promise<void>;
}

export interface RemoteGcRoot {
  kind: 'environment' | 'tag' | 'default-branch' | 'experiment' | 'workspace';
  name: string;
  commits: number;
}

export interface RemoteGcPlan {
  remote: string;
  roots: RemoteGcRoot[];
  listed: number;
  referenced: number;
  /** Unreferenced but changed within the grace period. */
  young: number;
  /** Unreferenced and older than the grace period: deleted (or to delete, on a dry run). */
  candidates: number;
  bytes: number;
  /** Candidates whose delete was refused because they changed after the listing. */
  raced: number;
  deleted: number;
  /** Manifests referenced by a root that neither the cache nor the remote holds. */
  unreadableManifests: string[];
  /** Conditional deletes sent. */
  deletesSent: number;
  /** Temps of uploads killed mid-put older than the grace period (a directory remote's tmp/). */
  staleTemps: number;
  seconds: number;
  dryRun: boolean;
}

async function refsUnder(root: string, prefix: string): Promise<Array<{ name: string; commit: string }>> {
  const text = await gitClient(root).raw([
    'for-each-ref',
    '--format=%(refname)%00%(objectname)%00%(*objectname)',
    prefix,
  ]);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [ref, object, peeled] = line.split('\0') as [string, string, string];
      return { name: ref.slice(prefix.length), commit: peeled?.trim() ? peeled.trim() : object };
    });
}

async function defaultBranchOf(root: string, given?: string): Promise<string | undefined> {
  if (given) return given;
  try {
    const head = (await gitClient(root).raw(['symbolic-ref', '-q', 'refs/remotes/origin/HEAD'])).trim();
    if (head) return head.replace(/^refs\/remotes\//, '');
  } catch {
    /* no origin/HEAD */
  }
  for (const b of ['main', 'master', 'origin/main', 'origin/master']) if (await revExists(root, b)) return b;
  return undefined;
}

/** The roots and the commits whose lockfiles they keep. */
async function remoteRoots(
  repo: Repo,
  options: RemoteGcOptions,
): Promise<{ roots: RemoteGcRoot[]; commits: Set<string> }> {
  const keep = options.keepLast ?? 10;
  const roots: RemoteGcRoot[] = [{ kind: 'workspace', name: 'workspace', commits: 0 }];
  const commits = new Set<string>();
  if (!fs.existsSync(path.join(repo.root, '.git'))) return { roots, commits };
  const history = async (rev: string): Promise<number> => {
    const list = await recentCommits(repo.root, keep, rev);
    for (const c of list) commits.add(c.commit);
    return list.length;
  };
  for (const env of ENVIRONMENTS) {
    const branch = await environmentBranch(repo.root, env);
    // The local branch and the team's copy of it (what was deployed may be ahead of this clone).
    for (const rev of [branch, `origin/${branch}`]) {
      if (
        !(await revExists(repo.root, `refs/heads/${rev}`)) &&
        !(await revExists(repo.root, `refs/remotes/${rev}`))
      )
        continue;
      roots.push({ kind: 'environment', name: `${env} (${rev})`, commits: await history(rev) });
    }
  }
  for (const tag of await refsUnder(repo.root, 'refs/tags/')) {
    commits.add(tag.commit);
    roots.push({ kind: 'tag', name: tag.name, commits: 1 });
  }
  const main = await defaultBranchOf(repo.root, options.defaultBranch);
  if (main) roots.push({ kind: 'default-branch', name: main, commits: await history(main) });
  for (const e of await refsUnder(repo.root, EXPERIMENT_REFS)) {
    commits.add(e.commit);
    roots.push({ kind: 'experiment', name: e.name, commits: 1 });
  }
  return { roots, commits };
}

/** Temps of puts (a directory remote's `tmp/`) younger than this are never swept. */
const TEMP_MIN_AGE_MS = 3_600_000;

/** Plans (and with `apply`, performs) the collection on `remote`. */
export async function collectRemoteGarbage(
  repo: Repo,
  remote: Remote,
  options: RemoteGcOptions = {},
): Promise<RemoteGcPlan> {
  const started = Date.now();
  const { roots, commits } = await remoteRoots(repo, options);
  const locks: Lockfile[] = [readLockfile(repo)];
  await withGitReader(repo.root, async (reader) => {
    for (const commit of commits) {
      const label = `${commit.slice(0, 12)}:${LOCKFILE_NAME}`;
      const repair = `Commit a repaired ${LOCKFILE_NAME} on the branch that holds ${commit.slice(0, 12)}, or delete the ref that keeps it.`;
      const committed = await readCommittedLockfile(reader, commit, { label, repair });
      if (committed) locks.push(committed.lockfile);
    }
  });
  const keep = new Set<Oid>();
  const dirs = new Map<Oid, ArtifactRef>();
  for (const lock of locks) {
    for (const ref of lockfileArtifacts(lock)) {
      keep.add(ref.hash);
      if (ref.dir) dirs.set(ref.hash, ref);
    }
  }
  // Manifests say which files a directory keeps: read them from the cache, pulling the missing.
  const cache = new Cache(repo);
  const absent = [...dirs.keys()].filter((oid) => !cache.hasSync(oid));
  if (absent.length > 0) await pullObjects(repo, remote, absent, { signal: options.signal, manifests: [] });
  const unreadableManifests: string[] = [];
  for (const ref of dirs.values()) {
    if (!cache.hasSync(ref.hash)) {
      unreadableManifests.push(`${ref.path}@${ref.hash.slice(0, 12)}`);
      continue;
    }
    const { entries } = await readManifest(cache, ref);
    for (const e of entries) keep.add(e.sha256);
    // The packs that hold its small files (packs.ts): named by the manifest alone.
    for (const g of packGroups(entries)) keep.add(g.id);
  }

  const now = options.now ?? Date.now();
  const graceMs = options.graceMs ?? 24 * 3600 * 1000;
  const candidates: RemoteObjectInfo[] = [];
  let listed = 0;
  let referenced = 0;
  let young = 0;
  for await (const info of remote.listDetailed({ signal: options.signal })) {
    listed++;
    if (options.out && listed % 20_000 === 0) options.out.err(`gc --remote: listed ${listed} objects`);
    if (keep.has(info.oid)) referenced++;
    else if (now - info.updated < graceMs) young++;
    else candidates.push(info);
  }
  let deleted = 0;
  let raced = 0;
  let deletes = 0;
  if (options.apply && unreadableManifests.length > 0) {
    // Their files cannot be told from garbage: deleting now could break those roots for good.
    throw new LockstepError(
      formatProblem(
        remote.url,
        'gc --remote: manifests referenced by kept lockfiles are on neither the cache nor the remote',
        unreadableManifests.slice(0, 5).join(', '),
        'Push them from a clone that has them (lockstep push), or drop the refs that pin them, then run gc again.',
      ),
    );
  }
  if (options.apply) {
    await options.beforeDelete?.();
    const pool = pLimit(16);
    await Promise.all(
      candidates.map((c) =>
        pool(async () => {
          deletes++;
          if (await remote.deleteIfUnchanged(c.oid, c.version, { signal: options.signal })) deleted++;
          else raced++;
        }),
      ),
    );
  }
  // A temp is a put in flight until its push links it into place: one younger than an hour is
  // kept whatever the grace (`--grace 0`, a clock ahead of the remote's), as the cache's are.
  const staleTemps =
    (await remote.sweepTemps?.(now - Math.max(graceMs, TEMP_MIN_AGE_MS), {
      apply: options.apply === true,
      signal: options.signal,
    })) ?? 0;
  return {
    remote: remote.url,
    roots,
    listed,
    referenced,
    young,
    candidates: candidates.length,
    bytes: candidates.reduce((n, c) => n + c.size, 0),
    raced,
    deleted,
    unreadableManifests,
    deletesSent: deletes,
    staleTemps,
    seconds: (Date.now() - started) / 1000,
    dryRun: !options.apply,
  };
}
