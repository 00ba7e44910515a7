/**
 * Planning: for each stage, whether it runs, is skipped, or has its outs restored from the cache,
 * and why. Checks go cheapest first (forced, never run, code, params, upstream, deps, outs), as
 * in DVC; the first that fires is the reason. The same check runs again just before a stage
 * executes, when its upstream stages are done and its deps can be hashed for real.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, InputRef, LockEntry, Lockfile, Oid, StageDef } from '../types.ts';
import { ConfigError, UnsafePathError } from '../errors.ts';
import { Cache } from '../store/cache.ts';
import type { Remote } from '../store/remote.ts';
import { artifactObjects, hashArtifact, isArtifactCurrent } from '../store/artifacts.ts';
import { getParam } from '../params.ts';
import { readLockfile } from '../lockfile.ts';
import { buildGraph, overlaps, selectStages, type StageGraph } from './graph.ts';
import { canonicalJson, codeFingerprint, runKey } from './fingerprint.ts';
import { readRunEntry } from './run-cache.ts';

/** `run` executes the stage; `restore` checks out its outs from the cache; `skip` does nothing. */
export type StageAction = 'run' | 'restore' | 'skip';

/** The outcome of checking one stage against its lock entry. */
export interface StageCheck {
  action: StageAction;
  /** Why: "never run", "code changed", "params train.lr changed", "up to date", ... */
  reason: string;
  code: Oid;
  /** Dotted params key → value the stage reads. */
  params: Record<string, unknown>;
  /** Declared non-file inputs as resolved now (or as pinned), by name. */
  inputs: Record<string, InputRef>;
  /** Deps as hashed now; undefined when a dep is missing or its upstream still has to run. */
  deps?: ArtifactRef[];
  /** Run-cache key, when the deps are known. */
  key?: Oid;
  /** For `restore`: the outs to check out, and where they come from. */
  restore?: {
    from: 'lockfile' | 'run-cache';
    outs: ArtifactRef[];
    metrics?: Record<string, number>;
    /** Some objects are on the remote only: checkout pulls them. */
    pull?: boolean;
  };
}

export interface PlannedStage extends StageCheck {
  name: string;
  stage: StageDef;
}

export interface Plan {
  graph: StageGraph;
  /** The selected stages in execution order. */
  stages: PlannedStage[];
  lockfile: Lockfile;
}

export interface PlanOptions {
  /** The validated params object. */
  params: Record<string, any>;
  /** Stage names to reproduce (plus their upstream); default: all. */
  targets?: string[];
  /** Re-run the selected stages whatever their state. Default false. */
  force?: boolean;
  /** The lockfile to compare against; default: read from the repository. */
  lockfile?: Lockfile;
  cache?: Cache;
  /** A remote to restore missing outs from (instead of re-running). Default: none. */
  remote?: Remote;
  /**
   * Stage → input name → a value recorded by an earlier run: resolve those inputs to that value
   * instead of their current one (`verify` replays a commit with the baseline it was gated on).
   */
  pinnedInputs?: Record<string, Record<string, InputRef>>;
}

export interface CheckInput {
  stage: StageDef;
  entry: LockEntry | undefined;
  /** Why the lockfile has no entry for the stage, when a merge dropped it (`Lockfile.stale`). */
  staleReason?: string;
  params: Record<string, any>;
  force: boolean;
  /** Upstream stages that will run first (plan time): their outs are not known yet. */
  upstreamRunning: string[];
  /** Paths that upstream stages will restore to their locked state before this stage runs. */
  restoredByUpstream: string[];
  cache: Cache;
  remote?: Remote;
  /** Input name → recorded value to resolve to instead of the current one. */
  pinnedInputs?: Record<string, InputRef>;
}

/** Resolves a stage's declared inputs (each pinned one to its recorded value). */
export async function resolveStageInputs(
  root: string,
  stage: StageDef,
  pinned: Record<string, InputRef> = {},
): Promise<Record<string, InputRef>> {
  const inputs: Record<string, InputRef> = {};
  for (const input of stage.inputs ?? []) inputs[input.name] = await input.resolve(root, pinned[input.name]);
  return inputs;
}

/** Names of inputs whose identity differs from the locked one, as `baseline dev@1a2b3c4d`. */
function changedInputs(now: Record<string, InputRef>, locked: Record<string, InputRef>): string[] {
  const names = [...new Set([...Object.keys(now), ...Object.keys(locked)])].sort();
  return names
    .filter((n) => now[n]?.hash !== locked[n]?.hash)
    .map((n) => `${n} ${now[n]?.label ?? 'removed'}`);
}

/** The params values `stage` reads; an unknown key is a ConfigError naming the stage. */
export function readStageParams(stage: StageDef, params: Record<string, any>): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const key of stage.params) {
    const v = getParam(params, key);
    if (v === undefined) {
      throw new ConfigError(
        `stage ${stage.name}: params key "${key}" does not exist in params.yaml or its schema. Fix the stage's params list.`,
      );
    }
    values[key] = v;
  }
  return values;
}

/** True when every object `ref` needs is in the local cache. */
export async function isInCache(repo: Repo, cache: Cache, ref: ArtifactRef): Promise<boolean> {
  if (!cache.hasSync(ref.hash)) return false;
  try {
    return (await artifactObjects(repo, ref, { cache })).every((oid) => cache.hasSync(oid));
  } catch (err) {
    // A manifest with an unsafe entry path is hostile, not a miss: stop rather than re-run.
    if (err instanceof UnsafePathError) throw err;
    return false;
  }
}

/** True when the top-level object of every ref is on the remote (checkout verifies the rest). */
async function isOnRemote(remote: Remote, refs: ArtifactRef[]): Promise<boolean> {
  try {
    const present = await remote.has(refs.map((r) => r.hash));
    return refs.every((r) => present.has(r.hash));
  } catch {
    return false;
  }
}

function changedParams(now: Record<string, unknown>, locked: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(now), ...Object.keys(locked)])].sort();
  return keys.filter((k) => canonicalJson(now[k]) !== canonicalJson(locked[k]));
}

async function tryRunCache(
  repo: Repo,
  stage: StageDef,
  check: StageCheck,
  cache: Cache,
): Promise<StageCheck> {
  if (!check.key) return check;
  const hit = readRunEntry(repo, check.key);
  if (!hit) return check;
  // Entries come from a shared cache (the Actions cache): one restores exactly the stage's
  // declared outs, never some other path in the repository.
  const declared = [...stage.outs].sort().join('\n');
  if ([...hit.outs.map((o) => o.path)].sort().join('\n') !== declared) return check;
  for (const ref of hit.outs) if (!(await isInCache(repo, cache, ref))) return check;
  return {
    ...check,
    action: 'restore',
    reason: `${check.reason}; restored from run-cache`,
    restore: { from: 'run-cache', outs: hit.outs, metrics: hit.metrics },
  };
}

/** Checks one stage: cheapest test first; the first that fires is the reason. */
export async function checkStage(repo: Repo, input: CheckInput): Promise<StageCheck> {
  const { stage, entry, cache } = input;
  const code = codeFingerprint(repo, stage);
  const params = readStageParams(stage, input.params);
  const inputs = await resolveStageInputs(repo.root, stage, input.pinnedInputs);
  const base = { code, params, inputs };
  let reason: string | undefined;
  // A forced stage still hashes its deps below: the lock entry and run-cache key need them.
  if (input.force) reason = 'forced';
  else if (!entry) reason = input.staleReason ?? 'never run';
  else if (entry.code !== code) reason = 'code changed';
  else {
    const changed = changedParams(params, entry.params ?? {});
    if (changed.length > 0) reason = `params ${changed.join(', ')} changed`;
    else {
      const moved = changedInputs(inputs, entry.inputs ?? {});
      if (moved.length > 0) reason = `${moved.join(', ')} changed`;
    }
  }
  if (input.upstreamRunning.length > 0 && !input.force) {
    return {
      ...base,
      action: 'run',
      reason: reason ?? `upstream ${input.upstreamRunning.join(', ')} will run`,
    };
  }
  // Deps: hash what is on disk; a path an upstream stage restores counts as its locked value.
  const deps: ArtifactRef[] = [];
  let missingDep: string | undefined;
  for (const dep of stage.deps) {
    const locked = entry?.deps.find((d) => d.path === dep);
    if (locked && input.restoredByUpstream.some((p) => overlaps(p, dep))) {
      deps.push(locked);
      continue;
    }
    if (!fs.existsSync(path.join(repo.root, dep))) {
      missingDep ??= dep;
      continue;
    }
    deps.push(await hashArtifact(repo, dep));
  }
  if (missingDep !== undefined)
    return { ...base, action: 'run', reason: reason ?? `dep ${missingDep} missing` };
  const key = runKey(stage, code, deps, params, inputs);
  const withDeps: StageCheck = { ...base, deps, key, action: 'run', reason: reason ?? '' };
  if (input.force) return withDeps;
  if (reason) return tryRunCache(repo, stage, withDeps, cache);
  const lockedDeps = new Map(entry!.deps.map((d) => [d.path, d]));
  if (lockedDeps.size !== deps.length || deps.some((d) => !lockedDeps.has(d.path))) {
    return tryRunCache(repo, stage, { ...withDeps, reason: 'deps list changed' }, cache);
  }
  const changedDep = deps.find((d) => lockedDeps.get(d.path)!.hash !== d.hash);
  if (changedDep)
    return tryRunCache(repo, stage, { ...withDeps, reason: `dep ${changedDep.path} changed` }, cache);
  // Outs: each must be locked and current; a missing or modified out is restored when cached.
  const lockedOuts = new Map(entry!.outs.map((o) => [o.path, o]));
  const notLocked = stage.outs.find((o) => !lockedOuts.has(o));
  if (notLocked)
    return tryRunCache(repo, stage, { ...withDeps, reason: `out ${notLocked} not locked` }, cache);
  for (const o of stage.outs) {
    const ref = lockedOuts.get(o)!;
    if (await isArtifactCurrent(repo, ref)) continue;
    const what = fs.existsSync(path.join(repo.root, o)) ? `out ${o} changed` : `out ${o} missing`;
    const outs = stage.outs.map((p) => lockedOuts.get(p)!);
    let cached = true;
    for (const r of outs) if (!(await isInCache(repo, cache, r))) cached = false;
    if (cached || (input.remote && (await isOnRemote(input.remote, outs)))) {
      return {
        ...withDeps,
        action: 'restore',
        reason: cached ? what : `${what}; pulling from ${input.remote!.url}`,
        restore: { from: 'lockfile', outs, metrics: entry!.metrics, ...(cached ? {} : { pull: true }) },
      };
    }
    return tryRunCache(repo, stage, { ...withDeps, reason: `${what} (not in cache)` }, cache);
  }
  return { ...withDeps, action: 'skip', reason: 'up to date' };
}

/** Builds the DAG and checks every selected stage without running anything. */
export async function planRun(repo: Repo, stages: StageDef[], options: PlanOptions): Promise<Plan> {
  const graph = buildGraph(stages);
  const selected = selectStages(graph, options.targets ?? []);
  const lockfile = options.lockfile ?? readLockfile(repo);
  const cache = options.cache ?? new Cache(repo);
  const planned = new Map<string, PlannedStage>();
  const result: PlannedStage[] = [];
  for (const stage of selected) {
    const ups = (graph.upstream.get(stage.name) ?? [])
      .map((u) => planned.get(u))
      .filter((u) => u !== undefined);
    const check = await checkStage(repo, {
      stage,
      entry: lockfile.stages[stage.name],
      staleReason: lockfile.stale?.[stage.name],
      params: options.params,
      force: options.force ?? false,
      upstreamRunning: ups.filter((u) => u.action === 'run').map((u) => u.name),
      restoredByUpstream: ups.filter((u) => u.action === 'restore').flatMap((u) => u.stage.outs),
      cache,
      remote: options.remote,
      pinnedInputs: options.pinnedInputs?.[stage.name],
    });
    const p: PlannedStage = { ...check, name: stage.name, stage };
    planned.set(stage.name, p);
    result.push(p);
  }
  return { graph, stages: result, lockfile };
}

/** The plan as text lines: `name  action  reason`. */
export function formatPlan(plan: Plan): string[] {
  const width = Math.max(5, ...plan.stages.map((s) => s.name.length));
  const verb: Record<StageAction, string> = { run: 'run', restore: 'restore', skip: 'skip' };
  return plan.stages.map((s) => `${s.name.padEnd(width)}  ${verb[s.action].padEnd(7)}  ${s.reason}`);
}

/** The plan as JSON-friendly data. */
export function planToJson(plan: Plan): { stages: { name: string; action: StageAction; reason: string }[] } {
  return { stages: plan.stages.map((s) => ({ name: s.name, action: s.action, reason: s.reason })) };
}
