/**
 * The shape of a `lockstep status` report and its text form: kept apart from the computation so a
 * status answered from its cache (status-cache.ts) prints without loading the planner.
 */
import type { Oid } from '../types.ts';
import type { WorkspaceState } from '../store/status-index.ts';

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

/** Tracked data paths whose workspace hash (through the status index) is not the locked one. */
export async function changedDataOf(
  index: { workspaceHash(p: string): Promise<WorkspaceState> },
  data: [string, { hash: Oid }][],
): Promise<ChangedData[]> {
  const changedData: ChangedData[] = [];
  for (const [p, ref] of data) {
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
  return changedData;
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
