/**
 * `lockstep status`: the plan without running (stale stages and why), plus which locked artifacts
 * have objects missing from the local cache and, optionally, from the remote.
 */
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Oid, StageDef } from '../types.ts';
import type { Remote } from '../store/remote.ts';
import { Cache } from '../store/cache.ts';
import { artifactObjects, lockfileArtifacts } from '../store/artifacts.ts';
import { StatusIndex } from '../store/status-index.ts';
import { readLockfile } from '../lockfile.ts';
import { LockfileConflictError } from '../errors.ts';
import { planRun, planToJson } from './plan.ts';

export interface MissingArtifact {
  path: string;
  hash: Oid;
  /** Objects absent (a directory whose manifest is absent counts its manifest only). */
  objects: number;
}

/** A tracked data path (`lockstep add`) whose workspace bytes differ from the lockfile. */
export interface ChangedData {
  path: string;
  /** `modified`: other bytes; `missing`: not in the workspace; `unreadable`: cannot be hashed as is. */
  state: 'modified' | 'missing' | 'unreadable';
  /** For `unreadable`: the one-line reason. */
  problem?: string;
}

export interface StatusReport {
  stages: { name: string; action: string; reason: string }[];
  /** Stages that would run or restore. */
  stale: string[];
  /** Tracked data whose workspace copy is not what the lockfile pins. */
  changedData: ChangedData[];
  missingLocal: MissingArtifact[];
  /** Only with a remote. */
  missingRemote?: MissingArtifact[];
  remote?: string;
  /**
   * The lockfile holds git conflict markers: the one-line error, and the stages the per-stage
   * merge (`lockstep lock resolve`) leaves stale. The plan above is made against that merge.
   */
  conflict?: { message: string; stale: { stage: string; reason: string }[]; data: string[] };
}

async function objectsOf(repo: Repo, cache: Cache, ref: ArtifactRef): Promise<Oid[]> {
  try {
    return await artifactObjects(repo, ref, { cache });
  } catch {
    return [ref.hash];
  }
}

/** Computes the status of the repository for `stages` (nothing is changed). */
export async function repoStatus(
  repo: Repo,
  stages: StageDef[],
  options: { params: Record<string, any>; remote?: Remote },
): Promise<StatusReport> {
  const cache = new Cache(repo);
  let lockfile;
  let conflict: StatusReport['conflict'];
  try {
    lockfile = readLockfile(repo);
  } catch (err) {
    if (!(err instanceof LockfileConflictError)) throw err;
    // Show what `lockstep lock resolve` would leave, so status still answers "what is stale".
    const { mergeConflictedLockfile } = await import('../lockfile-conflict.ts');
    const merge = (await mergeConflictedLockfile(repo))!;
    lockfile = merge.lockfile;
    conflict = {
      message: err.message,
      stale: merge.dropped,
      data: merge.dataConflicts.map((c) => c.path),
    };
  }
  const plan = await planRun(repo, stages, { params: options.params, lockfile, cache });
  const json = planToJson(plan);
  // The status index answers "unchanged" from stats alone, and "every object is cached" from
  // the cache's directory stamps, so a status with nothing changed reads no manifest.
  const index = StatusIndex.load(repo);
  const changedData: ChangedData[] = [];
  for (const [p, ref] of Object.entries(lockfile.data ?? {})) {
    const now = await index.workspaceHash(p);
    if (now.kind === 'present' && now.hash === ref.hash) continue;
    changedData.push(
      now.kind === 'present'
        ? { path: p, state: 'modified' }
        : now.kind === 'missing'
          ? { path: p, state: 'missing' }
          : { path: p, state: 'unreadable', problem: now.problem },
    );
  }
  const refs = lockfileArtifacts(lockfile);
  const missingLocal: MissingArtifact[] = [];
  const perRef: { ref: ArtifactRef; oids: Oid[] }[] = [];
  for (const ref of refs) {
    if (!options.remote && index.isComplete(ref)) continue;
    const oids = await objectsOf(repo, cache, ref);
    perRef.push({ ref, oids });
    const absent = oids.filter((o) => !cache.hasSync(o));
    if (absent.length > 0) missingLocal.push({ path: ref.path, hash: ref.hash, objects: absent.length });
    else index.markComplete(ref);
  }
  await index.save();
  const report: StatusReport = {
    stages: json.stages,
    stale: json.stages.filter((s) => s.action !== 'skip').map((s) => s.name),
    changedData,
    missingLocal,
    ...(conflict ? { conflict } : {}),
  };
  if (options.remote) {
    const all = [...new Set(perRef.flatMap((p) => p.oids))];
    const present = await options.remote.has(all);
    report.remote = options.remote.url;
    report.missingRemote = perRef
      .map(({ ref, oids }) => ({
        path: ref.path,
        hash: ref.hash,
        objects: oids.filter((o) => !present.has(o)).length,
      }))
      .filter((m) => m.objects > 0);
  }
  return report;
}

/** Human lines for a status report. */
export function formatStatus(s: StatusReport): string[] {
  const lines: string[] = [];
  if (s.conflict) {
    lines.push(s.conflict.message);
    for (const p of s.conflict.data)
      lines.push(`  data ${p}: changed on both sides; run "npx lockstep add ${p}" after choosing its bytes`);
  }
  if (s.stale.length === 0) lines.push('pipeline: up to date');
  else {
    lines.push('stale stages:');
    for (const st of s.stages.filter((x) => x.action !== 'skip'))
      lines.push(`  ${st.name}: ${st.reason} (${st.action})`);
  }
  if (s.changedData.length > 0) {
    lines.push('tracked data changed since the lockfile (lockstep add <path> records it):');
    for (const c of s.changedData)
      lines.push(`  ${c.path}: ${c.state === 'unreadable' ? `cannot be hashed (${c.problem})` : c.state}`);
  }
  if (s.missingLocal.length === 0) lines.push('cache: every locked artifact is present');
  else {
    lines.push('missing from the local cache (lockstep pull):');
    for (const m of s.missingLocal) lines.push(`  ${m.path} ${m.hash.slice(0, 12)} (${m.objects} objects)`);
  }
  if (s.missingRemote) {
    if (s.missingRemote.length === 0) lines.push(`remote ${s.remote}: every locked artifact is present`);
    else {
      lines.push(`missing on remote ${s.remote} (lockstep push):`);
      for (const m of s.missingRemote)
        lines.push(`  ${m.path} ${m.hash.slice(0, 12)} (${m.objects} objects)`);
    }
  }
  return lines;
}
