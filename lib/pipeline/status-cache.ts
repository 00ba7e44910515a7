/**
 * The whole-answer cache of `lockstep status`: the plan part of a status report (stale stages
 * and why) and the lockfile's tracked paths, keyed by the stat signatures (dev, ino, size,
 * mtime_ns, ctime_ns, mode) of every file and directory the plan read: params, the lockfile,
 * the config, promotion files, the pipeline module's directory, each stage's code, deps and outs,
 * the run cache, the cache's object directories and the git refs (the gate's baseline is an
 * input resolved from a branch). A hit skips loading params, the pipeline and the lockfile; the
 * tracked data and cached objects are still checked through the status index on every run.
 *
 * Racy-git rule: an answer whose inputs changed within RACY_MS of computing it is not written,
 * since a later edit in the same clock tick could leave the signature as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, StageDef } from '../types.ts';
import { writeFileAtomicSync } from '../atomic.ts';
import { StatusIndex } from '../store/status-index.ts';
import { changedDataOf, type StatusReport } from './status-report.ts';

const RACY_MS = 1000n;

/**
 * The pipeline an answer is for: the module named with `--pipeline` (part of the key; undefined
 * for the default) and the directories holding pipeline code (walked deep).
 */
export interface StatusPipeline {
  file: string | undefined;
  dirs: string[];
}

/** A path walked for the key: `deep` expands directories, otherwise the entry alone. */
type Root = [path: string, deep: boolean];

export interface CachedAnswer {
  stages: { name: string; action: string; reason: string }[];
  stale: string[];
  /** The lockfile's tracked data, `[path, hash]`. */
  data: [string, string][];
  /** Every artifact the lockfile pins (what `missingLocal` checks). */
  refs: ArtifactRef[];
}

interface CacheFile extends CachedAnswer {
  v: 1;
  key: string;
  roots: Root[];
  sigs: Record<string, string>;
}

function cacheFile(repo: Repo): string {
  return path.join(repo.stateDir, 'state', 'status-answer.json');
}

/** What is not a file the plan read but decides the answer: this build, the module, env. */
function baseKey(pipeline: string | undefined): string {
  const self = fileURLToPath(import.meta.url);
  let st = '';
  try {
    const s = fs.statSync(self, { bigint: true });
    st = `${s.size}:${s.mtimeNs}`;
  } catch {
    // A build without its own file on disk: the URL alone.
  }
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('LOCKSTEP_'))
    .sort(([a], [b]) => (a < b ? -1 : 1));
  return JSON.stringify([import.meta.url, st, pipeline ?? '', env]);
}

const SKIPPED_NAMES = new Set(['node_modules', '.git', '.lockstep']);

function sigOf(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.mode}`;
}

/** Every lstat a walk took, by path (see CachedAnswerRead). */
type Seen = Map<string, fs.BigIntStats>;

function walk(
  abs: string,
  deep: boolean,
  out: Record<string, string>,
  newest: { ns: bigint },
  seen?: Seen,
): void {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(abs, { bigint: true });
  } catch {
    out[abs] = 'missing';
    return;
  }
  out[abs] = sigOf(st);
  seen?.set(abs, st);
  if (st.mtimeNs > newest.ns) newest.ns = st.mtimeNs;
  if (st.ctimeNs > newest.ns) newest.ns = st.ctimeNs;
  if (!deep || !st.isDirectory()) return;
  let names: string[];
  try {
    names = fs.readdirSync(abs);
  } catch {
    out[abs] += ':unreadable';
    return;
  }
  for (const name of names.sort()) {
    // Git's and lockstep's own directories: the refs, runs and cache that decide the answer are
    // roots of their own, and the rest changes with every command (this cache file among it). A
    // directory root holding them (a --pipeline module at the repository root, a stage reading
    // `.`) would otherwise never give a cached answer.
    if (SKIPPED_NAMES.has(name)) continue;
    walk(path.join(abs, name), true, out, newest, seen);
  }
}

function signatures(roots: Root[], seen?: Seen): { sigs: Record<string, string>; newestNs: bigint } {
  const sigs: Record<string, string> = {};
  const newest = { ns: 0n };
  for (const [p, deep] of roots) walk(p, deep, sigs, newest, seen);
  return { sigs, newestNs: newest.ns };
}

/** The git directory and common directory of `root` (a worktree's `.git` is a file). */
function gitDirs(root: string): { git: string; common: string } | undefined {
  const dotGit = path.join(root, '.git');
  let git = dotGit;
  try {
    if (fs.statSync(dotGit).isFile()) {
      const m = /^gitdir:\s*(.+?)\s*$/m.exec(fs.readFileSync(dotGit, 'utf8'));
      if (!m) return undefined;
      git = path.resolve(root, m[1]!);
    }
  } catch {
    return undefined;
  }
  let common = git;
  try {
    common = path.resolve(git, fs.readFileSync(path.join(git, 'commondir'), 'utf8').trim());
  } catch {
    // Not a linked worktree.
  }
  return { git, common };
}

/** Paths whose signatures decide the answer apart from the stages' own paths. */
function fixedRoots(repo: Repo, pipeline: StatusPipeline): Root[] {
  const roots: Root[] = [
    [repo.paramsPath, false],
    [path.join(repo.root, 'params.schema.json'), false],
    [repo.lockfilePath, false],
    [repo.configPath, false],
    [path.join(repo.root, 'promotion'), true],
    ...pipeline.dirs.map((d): Root => [d, true]),
    [path.join(repo.stateDir, 'runs'), true],
    [path.join(repo.cacheDir, 'sha256'), false],
  ];
  try {
    for (const d of fs.readdirSync(path.join(repo.cacheDir, 'sha256')).sort())
      roots.push([path.join(repo.cacheDir, 'sha256', d), false]);
  } catch {
    // No cache yet: its directory's signature says so.
  }
  const git = gitDirs(repo.root);
  if (git) {
    roots.push([path.join(git.git, 'HEAD'), false]);
    roots.push([path.join(git.common, 'packed-refs'), false]);
    roots.push([path.join(git.common, 'refs'), true]);
    if (git.git !== git.common) roots.push([path.join(git.git, 'refs'), true]);
  }
  return roots;
}

function isAnswer(v: unknown): v is CacheFile {
  const c = v as CacheFile;
  return (
    typeof v === 'object' &&
    v !== null &&
    c.v === 1 &&
    typeof c.key === 'string' &&
    Array.isArray(c.roots) &&
    c.roots.every((r) => Array.isArray(r) && typeof r[0] === 'string' && typeof r[1] === 'boolean') &&
    typeof c.sigs === 'object' &&
    c.sigs !== null &&
    Array.isArray(c.stages) &&
    c.stages.every(
      (s) => typeof s?.name === 'string' && typeof s.action === 'string' && typeof s.reason === 'string',
    ) &&
    Array.isArray(c.stale) &&
    c.stale.every((s) => typeof s === 'string') &&
    Array.isArray(c.data) &&
    c.data.every((d) => Array.isArray(d) && typeof d[0] === 'string' && typeof d[1] === 'string') &&
    Array.isArray(c.refs) &&
    c.refs.every((r) => typeof r?.path === 'string' && typeof r.hash === 'string')
  );
}

/**
 * A cached answer as read, with the lstats its signatures were checked with: among them the
 * cache's fan-out directories, which the status index stamps next (statusFromAnswer), so they
 * are not stat'ed twice.
 */
export interface CachedAnswerRead extends CachedAnswer {
  seen: ReadonlyMap<string, fs.BigIntStats>;
}

/**
 * The cached answer when every signature it was computed from is unchanged, else undefined (a
 * missing, garbled or foreign cache file is a miss).
 */
export function readCachedAnswer(repo: Repo, pipeline: StatusPipeline): CachedAnswerRead | undefined {
  let body: unknown;
  try {
    body = JSON.parse(fs.readFileSync(cacheFile(repo), 'utf8'));
  } catch {
    return undefined;
  }
  if (!isAnswer(body) || body.key !== baseKey(pipeline.file)) return undefined;
  const seen: Seen = new Map();
  const { sigs } = signatures(body.roots, seen);
  const stored = Object.keys(body.sigs);
  if (stored.length !== Object.keys(sigs).length) return undefined;
  for (const k of stored) if (sigs[k] !== body.sigs[k]) return undefined;
  return { stages: body.stages, stale: body.stale, data: body.data, refs: body.refs, seen };
}

/**
 * Records `answer` for the next status, keyed by the signatures of what `stages` read, taken now.
 * Not written when a fixed input differs from `before` (taken by signaturesBefore ahead of the
 * computation: the answer may mix old and new) or any input changed within RACY_MS of now. Best
 * effort: a state directory that cannot be written only costs the next status.
 */
export function writeCachedAnswer(
  repo: Repo,
  pipeline: StatusPipeline,
  stages: StageDef[],
  answer: CachedAnswer,
  before: Record<string, string>,
): void {
  const roots = allRoots(repo, pipeline, stages);
  const { sigs, newestNs } = signatures(roots);
  // Anything that changed while the answer was computed: the answer may mix old and new.
  for (const k of Object.keys(before)) if (sigs[k] !== before[k]) return;
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  if (newestNs > nowNs - RACY_MS * 1_000_000n) return;
  const body: CacheFile = { v: 1, key: baseKey(pipeline.file), roots, sigs, ...answer };
  try {
    fs.mkdirSync(path.dirname(cacheFile(repo)), { recursive: true });
    writeFileAtomicSync(cacheFile(repo), JSON.stringify(body));
  } catch {
    // Read-only state: computed again next time.
  }
}

function allRoots(repo: Repo, pipeline: StatusPipeline, stages: StageDef[]): Root[] {
  const roots = fixedRoots(repo, pipeline);
  for (const s of stages)
    for (const p of [...s.code, ...s.deps, ...s.outs]) roots.push([path.join(repo.root, p), true]);
  return roots;
}

/**
 * Signatures taken before computing an answer (see writeCachedAnswer): the fixed inputs, and
 * with `stages` their code, deps and outs too. Signatures already in `into` are kept.
 */
export function signaturesBefore(
  repo: Repo,
  pipeline: StatusPipeline,
  stages: StageDef[] = [],
  into: Record<string, string> = {},
): Record<string, string> {
  return { ...signatures(allRoots(repo, pipeline, stages)).sigs, ...into };
}

/**
 * The status report from a cached answer: the plan part as cached, tracked data and cached
 * objects checked now through the status index. Undefined when an object is not known to be
 * cached (the full status says which are missing).
 */
export async function statusFromAnswer(
  repo: Repo,
  answer: CachedAnswer & { seen?: ReadonlyMap<string, fs.BigIntStats> },
): Promise<StatusReport | undefined> {
  const index = StatusIndex.load(repo, { seen: answer.seen });
  if (!answer.refs.every((ref) => index.isComplete(ref))) return undefined;
  const changedData = await changedDataOf(
    index,
    answer.data.map(([p, hash]) => [p, { hash }]),
  );
  await index.save();
  return { stages: answer.stages, stale: answer.stale, changedData, missingLocal: [] };
}
