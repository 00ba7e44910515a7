/**
 * Lineage of a registry entry: which data, params and code made the model at a commit, and the
 * stage graph that connects them, all read from the lockfile at that commit.
 */
import type { Lockfile } from '../types.ts';
import { resolveRef } from '../environment/refs.ts';
import { LOCKFILE, DEFAULT_LAYOUT, type RegistryLayout } from './registry.ts';
import { modelOf } from '../environment/model.ts';
import { LockstepError } from '../errors.ts';
import { withGitReader } from '../git-reader.ts';
import { readCommittedLockfile } from '../lockfile.ts';

export interface Lineage {
  commit: string;
  model?: string;
  /** Tracked data (`lockstep add`) and the ingest manifest, by path → hash. */
  data: Record<string, string>;
  /** Every param any stage read, dotted key → value. */
  params: Record<string, unknown>;
  /** Stage → code fingerprint. */
  code: Record<string, string>;
  /** Stage graph edges: `from` stage's out is a dep of `to` (`from` is a path for tracked data). */
  edges: { from: string; to: string; path: string }[];
}

/** Builds the lineage of a lockfile (pure). */
export function lineageOf(
  commit: string,
  lockfile: Lockfile,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): Lineage {
  const data: Record<string, string> = {};
  for (const [p, v] of Object.entries(lockfile.data)) data[p] = v.hash;
  const params: Record<string, unknown> = {};
  const code: Record<string, string> = {};
  const producer = new Map<string, string>();
  for (const [name, entry] of Object.entries(lockfile.stages)) {
    code[name] = entry.code;
    Object.assign(params, entry.params);
    for (const out of entry.outs) producer.set(out.path, name);
  }
  const edges: Lineage['edges'] = [];
  for (const [name, entry] of Object.entries(lockfile.stages)) {
    for (const dep of entry.deps) {
      const from =
        producer.get(dep.path) ??
        [...producer.entries()].find(([p]) => dep.path.startsWith(`${p}/`))?.[1] ??
        dep.path;
      edges.push({ from, to: name, path: dep.path });
      // Raw data a stage reads directly (not another stage's out) is part of the data lineage.
      if (from === dep.path) data[dep.path] = dep.hash;
    }
  }
  // The ingest manifest identifies the exact dataset the split was made from.
  for (const entry of Object.values(lockfile.stages)) {
    for (const out of entry.outs) if (/manifest/.test(out.path)) data[out.path] = out.hash;
  }
  const sortedParams = Object.fromEntries(Object.entries(params).sort(([a], [b]) => (a < b ? -1 : 1)));
  return {
    commit,
    model: modelOf(lockfile, layout.modelPath)?.hash,
    data,
    params: sortedParams,
    code,
    edges,
  };
}

/** Lineage at a commit, branch, tag or environment: reads that one lockfile, whatever the history. */
export async function lineageAt(root: string, ref: string, layout?: RegistryLayout): Promise<Lineage> {
  return withGitReader(root, async (reader) => {
    const { commit } = await resolveRef(root, ref, reader);
    const committed = await readCommittedLockfile(reader, commit);
    if (!committed)
      throw new LockstepError(
        `${ref}: no ${LOCKFILE} at ${commit.slice(0, 8)}. Choose a commit that ran the pipeline.`,
      );
    return lineageOf(commit, committed.lockfile, layout);
  });
}
