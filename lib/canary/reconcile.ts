/**
 * The canary controller, Argo Rollouts style. A context holds the desired model, the observed
 * endpoint (deployed models, traffic split, persisted canary status) and the status being
 * computed. Reconcile runs an ordered list of steps; each either settles the run (returns true:
 * the rest is skipped) or passes. Changes are planned as actions and applied together, and the
 * status is written in one place at the end, only when it changed — so a second run with no new
 * observations changes nothing. The steps live in ./moves.ts (the endpoint moves without a
 * verdict) and ./judge.ts (the analysed step); the context in ./context.ts, the status in ./status.ts.
 */
import { ConfigError, LockstepError } from '../errors.ts';
import type { CanaryStatus, Endpoint, ModelRef, TrafficSplit } from '../serving/endpoint.ts';
import type { PredictionLogEntry } from '../serving/logs.ts';
import type { CanaryStep } from '../environment/policy.ts';
import type { Analysis, AnalysisThresholds } from './analysis.ts';
import { stableModel, type CanaryContext } from './context.ts';
import { reconcileStep } from './judge.ts';
import {
  reconcileFirstDeploy,
  reconcileRevert,
  reconcileRevertPending,
  reconcileRolledBack,
  reconcileStart,
  reconcileSteady,
} from './moves.ts';
import { rolledBackStatus } from './status.ts';

export type CanaryAction =
  'none' | 'deploy' | 'start' | 'hold' | 'advance' | 'complete' | 'rollback' | 'cleanup';

export interface ReconcileOptions {
  endpoint: Endpoint;
  /** The model pinned for the environment. */
  desired: ModelRef;
  /** Canary traffic percentages, increasing, ending at 100; the first may be `shadow`. */
  steps: CanaryStep[];
  analysis: AnalysisThresholds;
  /** Prediction log entries with time >= `since`. */
  readLogs(since: Date): PredictionLogEntry[] | Promise<PredictionLogEntry[]>;
  /** Print the plan without applying it. */
  dry?: boolean;
  now?: () => Date;
  /**
   * An open revert pull request that takes the desired model off the environment's branch: the
   * desired model is not deployed again while it is open (reconcile holds on what serves).
   */
  revertPending?: { number: number; url: string; from: string; to: string };
}

export interface ReconcileResult {
  action: CanaryAction;
  /** True when the endpoint or the canary status changed (or would, with `dry`). */
  changed: boolean;
  /** True when the desired model is not serving because its canary failed (exit non-zero). */
  failed: boolean;
  /** One human line: why this action. */
  reason: string;
  /** What was (or would be) done, in order. */
  plan: string[];
  status: CanaryStatus | undefined;
  analysis?: Analysis;
}

/**
 * One reconcile pass: decide, apply (unless `dry`), write the status once.
 * A failure while applying sets the canary to 0% (stable keeps 100%) and reports it as failed.
 */
export async function reconcileCanary(opts: ReconcileOptions): Promise<ReconcileResult> {
  if (opts.steps.length === 0 || opts.steps[opts.steps.length - 1] !== 100) {
    throw new LockstepError(
      `canary.steps: must end at 100 "${JSON.stringify(opts.steps)}". Fix promotion/<env>.yaml.`,
    );
  }
  // Vertex AI routes each request to one deployed model and mirrors nothing, and its canary
  // status (endpoint labels) has no shadow flag: a shadow step there would see no traffic.
  if (opts.steps[0] === 'shadow' && opts.endpoint.kind !== 'local') {
    throw new ConfigError(
      `canary.steps: "shadow" needs the local endpoint; a ${opts.endpoint.kind} endpoint does not mirror requests. Remove shadow from promotion/<env>.yaml canary.steps (see README, Shadow traffic).`,
    );
  }
  const observed = await opts.endpoint.describe();
  const ctx: CanaryContext = {
    opts,
    observed,
    now: (opts.now ?? (() => new Date()))(),
    status: observed.canary ? { ...observed.canary } : undefined,
    action: 'none',
    reason: '',
    failed: false,
    plan: [],
  };
  const steps: ((c: CanaryContext) => boolean | Promise<boolean>)[] = [
    reconcileFirstDeploy,
    reconcileRevertPending,
    reconcileRolledBack,
    reconcileSteady,
    reconcileRevert,
    reconcileStart,
    reconcileStep,
  ];
  for (const step of steps) if (await step(ctx)) break;

  const statusChanged = JSON.stringify(ctx.status) !== JSON.stringify(observed.canary);
  const changed = ctx.plan.length > 0 || statusChanged;
  if (!opts.dry && changed) {
    try {
      for (const p of ctx.plan) await p.apply();
    } catch (err) {
      await abortCanary(ctx, err);
    }
    await opts.endpoint.writeCanaryStatus(ctx.status);
  }
  return {
    action: ctx.action,
    changed,
    failed: ctx.failed,
    reason: ctx.reason,
    plan: ctx.plan.map((p) => p.what),
    status: ctx.status,
    ...(ctx.analysis ? { analysis: ctx.analysis } : {}),
  };
}

/** Applying failed half-way: send all traffic back to the stable model and record the rollback. */
async function abortCanary(ctx: CanaryContext, err: unknown): Promise<void> {
  const msg = (err as Error).message?.split('\n')[0] ?? String(err);
  const after = await ctx.opts.endpoint.describe();
  const stable = ctx.status?.stable ?? stableModel({ ...ctx, observed: after }, ctx.opts.desired.hash)?.id;
  if (stable && after.deployedModels.some((d) => d.id === stable)) {
    const back: TrafficSplit = Object.fromEntries(
      after.deployedModels.map((d) => [d.id, d.id === stable ? 100 : 0]),
    );
    await ctx.opts.endpoint.setTraffic(back);
  }
  ctx.failed = true;
  ctx.action = 'rollback';
  ctx.reason = `${ctx.reason ? ctx.reason + ' — ' : ''}failed: ${msg}; canary at 0%, stable ${stable ?? '(none)'} keeps serving`;
  ctx.status = rolledBackStatus(ctx.opts.desired.hash, {
    candidate: ctx.status?.candidate,
    stable,
    stepIndex: ctx.status?.stepIndex ?? 0,
    now: ctx.now,
    message: ctx.reason,
  });
}
