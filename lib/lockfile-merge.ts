/**
 * Three-way merge of `artifacts.lock.yaml`, one entry at a time: the git merge driver, `lockstep
 * lock resolve` and `lockstep status` on a conflicted lockfile all use it. An entry changed on one
 * side only is taken; changed on both sides to the same value is taken; changed on both sides to
 * different values is dropped and recorded in `stale`, so the next plan re-runs the stage with
 * the reason "merged: both sides changed this stage".
 *
 * The merged lockfile never claims a result nobody computed: every stage entry it keeps appears
 * in one of the three versions together with the entries (and tracked data) that produced its
 * deps. An entry whose upstream came from the other side, or was dropped, is dropped too.
 *
 * This module imports nothing at run time: the merge driver runs once per merge.
 */
import type { LockEntry, Lockfile } from './types.ts';

/** The reason a stage changed on both sides is stale after the merge. */
export const BOTH_SIDES_CHANGED = 'merged: both sides changed this stage';

/** A data path (`lockstep add`) changed on both sides: no stage can recompute it. */
export interface DataConflict {
  path: string;
}

export interface LockfileMerge {
  lockfile: Lockfile;
  /** Stages left without an entry by this merge, with their reason, sorted by name. */
  dropped: { stage: string; reason: string }[];
  /** Tracked data changed on both sides: left out; `lockstep add <path>` records the chosen bytes. */
  dataConflicts: DataConflict[];
}

/** What a stage holds in one version: an entry, a reason it is stale, or nothing. */
type Slot = { entry: LockEntry } | { stale: string } | undefined;

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const rec = v as Record<string, unknown>;
    const keys = Object.keys(rec)
      .filter((k) => rec[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(rec[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'undefined';
}

function same(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function overlaps(a: string, b: string): boolean {
  const na = a.replace(/\/+$/, '');
  const nb = b.replace(/\/+$/, '');
  return na === nb || na.startsWith(nb + '/') || nb.startsWith(na + '/');
}

function slotOf(lf: Lockfile | undefined, stage: string): Slot {
  if (!lf) return undefined;
  const entry = lf.stages[stage];
  if (entry) return { entry };
  const stale = lf.stale?.[stage];
  return stale === undefined ? undefined : { stale };
}

/**
 * The per-key three-way rule. `base` undefined means the common ancestor is unknown (a conflict
 * without diff3 markers): then any difference counts as changed on both sides.
 */
function pick<T>(base: T | undefined, ours: T | undefined, theirs: T | undefined, hasBase: boolean) {
  if (same(ours, theirs)) return { value: ours, conflict: false };
  if (hasBase && same(base, ours)) return { value: theirs, conflict: false };
  if (hasBase && same(base, theirs)) return { value: ours, conflict: false };
  return { value: undefined, conflict: true };
}

/**
 * Merges three versions of the lockfile entry by entry. `base` is the common ancestor, or
 * undefined when it is not known (every difference then counts as changed on both sides).
 */
export function mergeLockfiles(base: Lockfile | undefined, ours: Lockfile, theirs: Lockfile): LockfileMerge {
  const hasBase = base !== undefined;
  const versions = [ours, theirs, ...(base ? [base] : [])];
  const merged: Lockfile = { schema: 1, data: {}, stages: {}, stale: {} };
  const dataConflicts: DataConflict[] = [];

  const dataPaths = [...new Set(versions.flatMap((v) => Object.keys(v.data)))].sort();
  for (const p of dataPaths) {
    const r = pick(base?.data[p], ours.data[p], theirs.data[p], hasBase);
    if (r.conflict) dataConflicts.push({ path: p });
    else if (r.value) merged.data[p] = r.value;
  }

  const stageNames = [
    ...new Set(versions.flatMap((v) => [...Object.keys(v.stages), ...Object.keys(v.stale ?? {})])),
  ].sort();
  const slots = new Map<string, Slot>();
  for (const name of stageNames) {
    const r = pick(slotOf(base, name), slotOf(ours, name), slotOf(theirs, name), hasBase);
    slots.set(name, r.conflict ? { stale: BOTH_SIDES_CHANGED } : r.value);
  }

  // Who produces each path, in any version: a stage (its outs) or tracked data.
  const producers = (stage: string, dep: string): { key: string; data: boolean }[] => {
    const found: { key: string; data: boolean }[] = [];
    for (const name of stageNames) {
      if (name === stage) continue;
      if (versions.some((v) => v.stages[name]?.outs.some((o) => overlaps(o.path, dep))))
        found.push({ key: name, data: false });
    }
    for (const p of dataPaths) if (overlaps(p, dep)) found.push({ key: p, data: true });
    return found;
  };
  const mergedValue = (pr: { key: string; data: boolean }): unknown =>
    pr.data ? merged.data[pr.key] : slots.get(pr.key);
  const versionValue = (v: Lockfile, pr: { key: string; data: boolean }): unknown =>
    pr.data ? v.data[pr.key] : slotOf(v, pr.key);

  // Drop entries whose inputs no version computed them from; repeat, since a drop moves down.
  for (let changed = true; changed;) {
    changed = false;
    for (const name of stageNames) {
      const slot = slots.get(name);
      if (!slot || !('entry' in slot)) continue;
      const inputs = slot.entry.deps.map((d) => ({ dep: d.path, from: producers(name, d.path) }));
      const computedIn = (v: Lockfile) =>
        same(slotOf(v, name), slot) &&
        inputs.every((i) => i.from.every((pr) => same(versionValue(v, pr), mergedValue(pr))));
      if (versions.some(computedIn)) continue;
      const source = versions.find((v) => same(slotOf(v, name), slot))!;
      const moved = inputs.find((i) => i.from.some((pr) => !same(versionValue(source, pr), mergedValue(pr))));
      slots.set(name, { stale: `merged: input ${moved?.dep ?? '?'} changed in the merge` });
      changed = true;
    }
  }

  const dropped: { stage: string; reason: string }[] = [];
  for (const name of stageNames) {
    const slot = slots.get(name);
    if (!slot) continue;
    if ('entry' in slot) merged.stages[name] = slot.entry;
    else {
      merged.stale![name] = slot.stale;
      const wasStale = versions.every((v) => same(slotOf(v, name), slot));
      if (!wasStale) dropped.push({ stage: name, reason: slot.stale });
    }
  }
  if (Object.keys(merged.stale!).length === 0) delete merged.stale;
  return { lockfile: merged, dropped, dataConflicts };
}
