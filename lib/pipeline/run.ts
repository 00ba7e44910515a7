/**
 * Running a plan: independent stages in parallel (bounded), each re-checked just before it
 * executes (its upstream is done, so deps hash for real and an unchanged upstream result lets it
 * skip). A running stage's outs are removed first; afterwards they are committed to the cache,
 * recorded in the run-cache, and the lockfile entry is written at once, so a later failure keeps
 * every earlier good entry. A failed stage stops its dependents and names them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type {
  ArtifactRef,
  InputRef,
  LockEntry,
  Lockfile,
  StageContext,
  StageDef,
  StageResult,
} from '../types.ts';
import type { Output } from '../output.ts';
import { LockstepError, RefusedError, StageError, toOneLine } from '../errors.ts';
import { Cache } from '../store/cache.ts';
import type { Remote } from '../store/remote.ts';
import { commitArtifact } from '../store/artifacts.ts';
import { checkoutArtifact } from '../store/checkout.ts';
import { ensureArtifacts } from '../store/availability.ts';
import { readLockfile, writeLockfile } from '../lockfile.ts';
import { withRepoLock, type RepoLockOptions } from '../lock.ts';
import { checkStage, planRun, type Plan, type StageCheck } from './plan.ts';
import { dependentsOf } from './graph.ts';
import { lockedMetrics, readMetricsFiles } from './metrics.ts';
import { codeFingerprint, runKey } from './fingerprint.ts';
import { readRunEntry, writeRunEntry } from './run-cache.ts';
import { writeRunRecord } from './run-record.ts';

export type StageStatus = 'ran' | 'restored' | 'skipped' | 'failed' | 'not run';

export interface StageOutcome {
  name: string;
  status: StageStatus;
  /** Why it ran, was restored or skipped (or the error, or which upstream failed). */
  reason: string;
  durationMs: number;
  metrics?: Record<string, number>;
  /** The stage's one-line summary, if it returned one. */
  summary?: string;
  /** The stage ran but its check said no (a gate). */
  refused?: boolean;
  /** Run facts the stage reported (also in `.lockstep/records/<stage>.json`); never in an out. */
  facts?: Record<string, string | number | boolean>;
}

export interface RunReport {
  plan: Plan;
  stages: StageOutcome[];
  /** First failure, with the dependents it skipped. */
  failures: { stage: string; message: string; skipped: string[] }[];
  /** Stages that returned `{failed: true}`. */
  refused: { stage: string; summary: string }[];
  /** The run was interrupted (signal aborted): stages not yet started did not run. */
  interrupted?: boolean;
  ok: boolean;
}

/**
 * Computes a stage somewhere other than this process (a Vertex AI job, lib/compute). It leaves
 * the stage's outs in the workspace exactly as `stage.run(ctx)` would; the runner then commits,
 * locks and records them the same way, so where a stage computed is not part of its identity.
 */
export interface StageExecutor {
  /** True when `stage` computes through this executor. */
  handles(stage: string): boolean;
  run(stage: StageDef, check: StageCheck, ctx: StageContext): Promise<StageResult | void>;
}

export interface ReproOptions {
  params: Record<string, any>;
  /** Stage names to reproduce (with their upstream); default all. */
  targets?: string[];
  /** Re-run selected stages. Default false. */
  force?: boolean;
  /** Plan only. Default false. */
  dry?: boolean;
  /** Stages run at the same time. Default: min(4, CPU count). */
  jobs?: number;
  /** Progress lines (stderr). Default: none. */
  out?: Output;
  /** Restore missing outs from this remote instead of re-running (`repro --pull`). Default none. */
  remote?: Remote;
  /** Repository lock options (timeout, waiting message). */
  lock?: RepoLockOptions;
  signal?: AbortSignal;
  /** Stage → input name → recorded value to use instead of the current one (see PlanOptions). */
  pinnedInputs?: Record<string, Record<string, InputRef>>;
  /** Where stages compute when not in this process (default: every stage here). */
  executor?: StageExecutor;
}

/** Plans, then (unless dry) runs the stages, holding the repository lock throughout. */
export async function reproduce(repo: Repo, stages: StageDef[], options: ReproOptions): Promise<RunReport> {
  return withRepoLock(repo, 'repro', () => reproduceLocked(repo, stages, options), {
    out: options.out,
    ...options.lock,
  });
}

async function reproduceLocked(repo: Repo, stages: StageDef[], options: ReproOptions): Promise<RunReport> {
  const cache = new Cache(repo, { out: options.out });
  const lockfile: Lockfile = readLockfile(repo);
  const plan = await planRun(repo, stages, { ...options, lockfile, cache });
  const report: RunReport = { plan, stages: [], failures: [], refused: [], ok: true };
  if (options.dry) return report;

  const out = options.out;
  const jobs = Math.max(1, options.jobs ?? Math.min(4, os.cpus().length));
  const outcomes = new Map<string, StageOutcome>();
  const blocked = new Map<string, string>(); // stage -> failed upstream
  let lockWrite: Promise<void> = Promise.resolve();
  const saveEntry = (name: string, entry: LockEntry): Promise<void> => {
    lockfile.stages[name] = entry;
    // The stage is computed again: the reason a merge dropped its entry no longer applies.
    if (lockfile.stale) delete lockfile.stale[name];
    const snapshot = structuredClone(lockfile);
    lockWrite = lockWrite.then(() => writeLockfile(repo, snapshot));
    return lockWrite;
  };

  const execute = async (name: string): Promise<void> => {
    const planned = plan.stages.find((s) => s.name === name)!;
    const stage = planned.stage;
    const started = performance.now();
    try {
      const check = await checkStage(repo, {
        stage,
        entry: lockfile.stages[name],
        staleReason: lockfile.stale?.[name],
        params: options.params,
        force: options.force ?? false,
        upstreamRunning: [],
        restoredByUpstream: [],
        cache,
        remote: options.remote,
        pinnedInputs: options.pinnedInputs?.[name],
      });
      const outcome = await act(repo, stage, check, {
        cache,
        remote: options.remote,
        out,
        signal: options.signal,
        params: options.params,
        saveEntry,
        executor: options.executor,
      });
      outcome.durationMs = Math.round(performance.now() - started);
      outcomes.set(name, outcome);
      if (outcome.refused) report.refused.push({ stage: name, summary: outcome.summary ?? 'check failed' });
    } catch (err) {
      const message = toOneLine(err);
      const skipped = dependentsOf(plan.graph, name).filter((d) => plan.stages.some((s) => s.name === d));
      for (const d of skipped) if (!blocked.has(d)) blocked.set(d, name);
      outcomes.set(name, {
        name,
        status: 'failed',
        reason: message,
        durationMs: Math.round(performance.now() - started),
      });
      report.failures.push({ stage: name, message, skipped });
      out?.err(`${name} failed: ${message}`);
    }
  };

  // A small scheduler: start every stage whose upstream finished, up to `jobs` at once.
  const waiting = plan.stages.map((s) => s.name);
  const running = new Map<string, Promise<string>>();
  while (waiting.length > 0 || running.size > 0) {
    // Interrupted: start nothing new; stages already running get the abort through ctx.signal.
    if (options.signal?.aborted) {
      for (const name of waiting.splice(0)) {
        outcomes.set(name, { name, status: 'not run', reason: 'interrupted', durationMs: 0 });
      }
    }
    for (let i = 0; i < waiting.length && running.size < jobs;) {
      const name = waiting[i]!;
      const ups = (plan.graph.upstream.get(name) ?? []).filter((u) => plan.stages.some((s) => s.name === u));
      if (blocked.has(name)) {
        outcomes.set(name, {
          name,
          status: 'not run',
          reason: `upstream ${blocked.get(name)} failed`,
          durationMs: 0,
        });
        waiting.splice(i, 1);
        continue;
      }
      if (ups.every((u) => outcomes.has(u))) {
        waiting.splice(i, 1);
        running.set(
          name,
          execute(name).then(() => name),
        );
        continue;
      }
      i++;
    }
    if (running.size === 0) break;
    const finished = await Promise.race(running.values());
    running.delete(finished);
  }
  await lockWrite;
  report.stages = plan.stages.map((s) => outcomes.get(s.name)!).filter(Boolean);
  report.interrupted = Boolean(options.signal?.aborted);
  report.ok = report.failures.length === 0 && report.refused.length === 0 && !report.interrupted;
  return report;
}

function withInputs(inputs: Record<string, InputRef>): { inputs?: Record<string, InputRef> } {
  return Object.keys(inputs).length > 0 ? { inputs } : {};
}

interface ActOptions {
  cache: Cache;
  remote?: Remote;
  out?: Output;
  signal?: AbortSignal;
  params: Record<string, any>;
  saveEntry(name: string, entry: LockEntry): Promise<void>;
  executor?: StageExecutor;
}

async function act(repo: Repo, stage: StageDef, check: StageCheck, o: ActOptions): Promise<StageOutcome> {
  const name = stage.name;
  // A stage's earlier verdict (a gate that said no) still holds when it is skipped or restored.
  const earlier = check.key ? readRunEntry(repo, check.key)?.result : undefined;
  const verdict = {
    ...(earlier?.summary ? { summary: earlier.summary } : {}),
    ...(earlier?.failed ? { refused: true } : {}),
  };
  if (check.action === 'skip') {
    return { name, status: 'skipped', reason: check.reason, durationMs: 0, ...verdict };
  }
  if (check.action === 'restore') {
    o.out?.err(`${name}: restoring outs (${check.reason})`);
    const remote = check.restore!.pull ? o.remote : undefined;
    // Every object first: a stage whose outs cannot all be restored changes none of them.
    await ensureArtifacts(repo, check.restore!.outs, {
      remote,
      out: o.out,
      what: `stage ${name}`,
      fix: 'Pull them (lockstep pull) or re-run the stage with lockstep repro --force.',
    });
    for (const ref of check.restore!.outs) await checkoutArtifact(repo, ref, { out: o.out, remote });
    const metrics = lockedMetrics(check.restore!.metrics, stage.outOnlyMetrics);
    await o.saveEntry(name, {
      code: check.code,
      deps: check.deps!,
      params: check.params,
      outs: check.restore!.outs,
      ...(metrics ? { metrics } : {}),
      ...withInputs(check.inputs),
    });
    return {
      name,
      status: 'restored',
      reason: check.reason,
      durationMs: 0,
      ...(metrics ? { metrics } : {}),
      ...verdict,
    };
  }
  if (!check.deps) {
    const missing = stage.deps.find((d) => !fs.existsSync(path.join(repo.root, d)));
    throw new StageError(
      name,
      `dep "${missing ?? stage.deps.join(', ')}" does not exist. Track it with lockstep add, or fix the stage's deps`,
    );
  }
  o.out?.err(`${name}: running (${check.reason})`);
  // Outs are removed first so a stage never sees (or leaves behind) stale output of an earlier run.
  for (const rel of stage.outs) {
    await fs.promises.rm(path.join(repo.root, rel), { recursive: true, force: true });
    await fs.promises.mkdir(path.dirname(path.join(repo.root, rel)), { recursive: true });
  }
  const controller = new AbortController();
  const onAbort = () => controller.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const ctx: StageContext = {
    root: repo.root,
    params: o.params,
    out: o.out ?? { out: () => {}, err: () => {}, isTTY: false },
    abs: (rel) => path.join(repo.root, rel),
    signal: controller.signal,
    inputs: check.inputs,
  };
  const startedAt = new Date();
  let result: StageResult | void;
  try {
    result = o.executor?.handles(name) ? await o.executor.run(stage, check, ctx) : await stage.run(ctx);
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  for (const rel of stage.outs) {
    if (!fs.existsSync(path.join(repo.root, rel))) {
      throw new StageError(
        name,
        `out "${rel}" was not written. Make the stage write it, or remove it from outs`,
      );
    }
  }
  const outs: ArtifactRef[] = [];
  for (const rel of stage.outs) outs.push(await commitArtifact(repo, rel, { cache: o.cache, out: o.out }));
  const metrics = stage.metrics?.length
    ? lockedMetrics(readMetricsFiles(repo.root, stage.metrics, name), stage.outOnlyMetrics)
    : undefined;
  // Order matters for crash safety: objects are in the cache before the run-cache entry and the
  // lock entry that point at them are written.
  const summary = result && result.summary ? result.summary : undefined;
  const refused = Boolean(result && result.failed);
  const facts = result && result.facts && Object.keys(result.facts).length > 0 ? result.facts : undefined;
  // A stage may write into its own code paths (validate infers a schema file there). Lock the
  // fingerprint as it is after the run, or the next plan would call the stage changed forever.
  const code = codeFingerprint(repo, stage);
  const keys = new Set([check.key!, runKey(stage, code, check.deps, check.params, check.inputs)]);
  for (const key of keys) await writeRunEntry(repo, key, name, outs, metrics, { failed: refused, summary });
  await o.saveEntry(name, {
    code,
    deps: check.deps,
    params: check.params,
    outs,
    ...(metrics ? { metrics } : {}),
    ...withInputs(check.inputs),
  });
  await writeRunRecord(repo, name, {
    key: check.key!,
    started: startedAt,
    finished: new Date(),
    facts: facts ?? {},
  });
  return {
    name,
    status: 'ran',
    reason: check.reason,
    durationMs: 0,
    ...(metrics ? { metrics } : {}),
    ...(summary ? { summary } : {}),
    ...(refused ? { refused: true } : {}),
    ...(facts ? { facts } : {}),
  };
}

/**
 * Throws the typed error a failed run deserves: a StageError naming the failed stage and the
 * dependents it skipped ("train failed: <msg>. Skipped: evaluate, gate"), or a RefusedError for
 * a stage that said no (a gate). Returns normally when the run succeeded.
 */
export function assertRunSucceeded(report: RunReport): void {
  if (report.interrupted) {
    const notRun = report.stages.filter((s) => s.reason === 'interrupted').map((s) => s.name);
    throw new LockstepError(
      `repro: interrupted${notRun.length ? `; not run: ${notRun.join(', ')}` : ''}. Completed stages are locked; run lockstep repro again to continue.`,
      { exitCode: 130 },
    );
  }
  const first = report.failures[0];
  if (first) {
    const skipped = report.failures.flatMap((f) => f.skipped);
    const others = report.failures.slice(1).map((f) => `${f.stage} failed: ${f.message}`);
    const tail = skipped.length ? ` Skipped: ${[...new Set(skipped)].join(', ')}.` : '';
    const msg = `${first.stage} failed: ${first.message.replace(/\.$/, '')}.${tail}${others.length ? ' Also: ' + others.join('; ') : ''}`;
    throw new StageError(first.stage, msg, [...new Set(skipped)]);
  }
  const refused = report.refused[0];
  if (refused) throw new RefusedError(`${refused.stage}: ${refused.summary}`);
}

/** Human lines for a finished run: one per stage with status, reason and time. */
export function formatReport(report: RunReport): string[] {
  const width = Math.max(5, ...report.stages.map((s) => s.name.length));
  return report.stages.map((s) => {
    const secs = s.durationMs >= 100 ? ` (${(s.durationMs / 1000).toFixed(1)}s)` : '';
    const extra = s.summary ? ` - ${s.summary}` : '';
    return `${s.name.padEnd(width)}  ${s.status.padEnd(8)}  ${s.reason}${secs}${extra}`;
  });
}

/** The run report as JSON-friendly data (no stage functions). */
export function reportToJson(report: RunReport): {
  ok: boolean;
  stages: StageOutcome[];
  failures: RunReport['failures'];
  refused: RunReport['refused'];
} {
  return { ok: report.ok, stages: report.stages, failures: report.failures, refused: report.refused };
}
