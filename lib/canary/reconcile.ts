/**
 * The canary controller, Argo Rollouts style. A context holds the desired model, the observed
 * endpoint (deployed models, traffic split, persisted canary status) and the status being
 * computed. Reconcile runs an ordered list of steps; each either settles the run (returns true:
 * the rest is skipped) or passes. Changes are planned as actions and applied together, and the
 * status is written in one place at the end, only when it changed — so a second run with no new
 * observations changes nothing.
 */
import { ConfigError, LockstepError } from '../errors.ts';
import type {
  CanaryStatus,
  Endpoint,
  EndpointDescription,
  ModelRef,
  TrafficSplit,
} from '../serving/endpoint.ts';
import type { PredictionLogEntry } from '../serving/logs.ts';
import type { CanaryStep } from '../environment/policy.ts';
import { analyzeStep, type Analysis, type AnalysisThresholds } from './analysis.ts';

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

interface CanaryContext {
  readonly opts: ReconcileOptions;
  readonly observed: EndpointDescription;
  readonly now: Date;
  /** The status being computed (starts as the persisted one). */
  status: CanaryStatus | undefined;
  action: CanaryAction;
  reason: string;
  failed: boolean;
  analysis?: Analysis;
  plan: { what: string; apply: () => Promise<void> }[];
}

const short = (hash: string) => hash.slice(0, 12);

function trafficOf(ctx: CanaryContext, id: string | undefined): number {
  return id === undefined ? 0 : (ctx.observed.trafficSplit[id] ?? 0);
}

function deployedByHash(ctx: CanaryContext, hash: string) {
  return ctx.observed.deployedModels.find((d) => d.model.hash === hash);
}

/** The model serving most traffic other than `exceptHash` (the stable one). */
function stableModel(ctx: CanaryContext, exceptHash: string) {
  return ctx.observed.deployedModels
    .filter((d) => d.model.hash !== exceptHash)
    .sort((a, b) => trafficOf(ctx, b.id) - trafficOf(ctx, a.id) || Number(a.id) - Number(b.id))[0];
}

function settle(ctx: CanaryContext, action: CanaryAction, reason: string): true {
  ctx.action = action;
  ctx.reason = reason;
  if (ctx.status) ctx.status = { ...ctx.status, message: reason };
  return true;
}

function stepLabel(ctx: CanaryContext, index: number): string {
  return `step ${index + 1}/${ctx.opts.steps.length}`;
}

/** Traffic of a step: `shadow` takes none (it only sees mirrored requests). */
function percentOf(step: CanaryStep | undefined): number {
  return step === 'shadow' ? 0 : (step ?? 100);
}

/** "at 25%" or "in shadow (0% traffic, every request mirrored)". */
function stepWhere(step: CanaryStep): string {
  return step === 'shadow' ? 'in shadow' : `at ${step}%`;
}

/** Nothing deployed yet: the desired model takes 100% (there is no stable model to compare against). */
function reconcileFirstDeploy(ctx: CanaryContext): boolean {
  if (ctx.observed.deployedModels.length > 0) return false;
  const { desired } = ctx.opts;
  ctx.plan.push({
    what: `deploy ${short(desired.hash)} at 100%`,
    apply: async () => {
      const dm = await ctx.opts.endpoint.deploy(desired, 100);
      if (ctx.status) ctx.status.candidate = dm.id;
    },
  });
  ctx.status = {
    candidateHash: desired.hash,
    stepIndex: ctx.opts.steps.length - 1,
    phase: 'completed',
    stepStartedAt: ctx.now.toISOString(),
    message: '',
  };
  return settle(
    ctx,
    'deploy',
    `first deploy: ${short(desired.hash)} serves 100% (no stable model to compare against)`,
  );
}

/** The desired model already serves everything: undeploy leftovers (0% models), otherwise nothing to do. */
function reconcileSteady(ctx: CanaryContext): boolean {
  const { desired } = ctx.opts;
  const dm = deployedByHash(ctx, desired.hash);
  if (!dm || trafficOf(ctx, dm.id) !== 100) return false;
  if (ctx.status?.phase === 'progressing' && ctx.status.candidateHash === desired.hash) return false;
  const leftovers = ctx.observed.deployedModels.filter((d) => d.id !== dm.id);
  for (const d of leftovers) {
    ctx.plan.push({
      what: `undeploy ${d.id} (${short(d.model.hash)}, 0% traffic)`,
      apply: () => ctx.opts.endpoint.undeploy(d.id),
    });
  }
  if (!ctx.status || ctx.status.candidateHash !== desired.hash) {
    ctx.status = {
      candidateHash: desired.hash,
      candidate: dm.id,
      stepIndex: ctx.opts.steps.length - 1,
      phase: 'completed',
      stepStartedAt: ctx.now.toISOString(),
      message: '',
    };
  }
  if (leftovers.length > 0)
    return settle(
      ctx,
      'cleanup',
      `${short(desired.hash)} serves 100%: undeploying ${leftovers.map((d) => d.id).join(', ')} (no traffic)`,
    );
  ctx.action = 'none';
  ctx.reason = `nothing to do: ${short(desired.hash)} (deployed model ${dm.id}) serves 100%`;
  return true;
}

/** A revert pull request of the desired model is open: hold on the model it restores. */
function reconcileRevertPending(ctx: CanaryContext): boolean {
  const pending = ctx.opts.revertPending;
  if (!pending || pending.from !== ctx.opts.desired.hash) return false;
  const restored = deployedByHash(ctx, pending.to);
  // Whatever the endpoint's status says, the model being reverted gets no traffic meanwhile.
  if (restored && trafficOf(ctx, restored.id) !== 100) {
    const split: TrafficSplit = Object.fromEntries(
      ctx.observed.deployedModels.map((d) => [d.id, d.id === restored.id ? 100 : 0]),
    );
    ctx.plan.push({
      what: `set ${restored.id} (${short(pending.to)}) to 100%`,
      apply: () => ctx.opts.endpoint.setTraffic(split),
    });
  }
  ctx.action = 'hold';
  ctx.reason = `holding: revert pull request #${pending.number} pins ${short(pending.to)} again and is not merged yet; ${short(pending.from)} is not deployed again (${pending.url})`;
  return true;
}

/** The desired model's canary failed earlier: keep the stable model and keep reporting the failure. */
function reconcileRolledBack(ctx: CanaryContext): boolean {
  const s = ctx.status;
  if (s?.phase !== 'rolled-back' || s.candidateHash !== ctx.opts.desired.hash) return false;
  ctx.failed = true;
  ctx.action = 'none';
  ctx.reason = `canary of ${short(s.candidateHash)} was rolled back (${s.message}); the stable model keeps serving. Pin a new model to try again.`;
  return true;
}

/**
 * The stable model is pinned again while a canary is in flight (a revert): it takes 100% back at
 * once and the candidate is undeployed — no analysis is needed to return to what was serving.
 */
function reconcileRevert(ctx: CanaryContext): boolean {
  const s = ctx.status;
  const { desired, endpoint } = ctx.opts;
  const existing = deployedByHash(ctx, desired.hash);
  if (!s || s.candidateHash === desired.hash || !existing || s.stable !== existing.id) return false;
  const others = ctx.observed.deployedModels.filter((d) => d.id !== existing.id);
  const split: TrafficSplit = Object.fromEntries(
    ctx.observed.deployedModels.map((d) => [d.id, d.id === existing.id ? 100 : 0]),
  );
  ctx.plan.push({
    what: `set ${existing.id} (${short(desired.hash)}) to 100%`,
    apply: () => endpoint.setTraffic(split),
  });
  for (const d of others)
    ctx.plan.push({
      what: `undeploy ${d.id} (${short(d.model.hash)})`,
      apply: () => endpoint.undeploy(d.id),
    });
  ctx.status = {
    candidateHash: desired.hash,
    candidate: existing.id,
    stepIndex: ctx.opts.steps.length - 1,
    phase: 'completed',
    stepStartedAt: ctx.now.toISOString(),
    message: '',
  };
  return settle(
    ctx,
    'rollback',
    `canary of ${short(s.candidateHash)} abandoned: ${short(desired.hash)} is pinned again and serves 100%`,
  );
}

/** A new desired model: deploy it at the first step (aborting any other canary in flight). */
function reconcileStart(ctx: CanaryContext): boolean {
  const { desired, steps, endpoint } = ctx.opts;
  if (ctx.status?.phase === 'progressing' && ctx.status.candidateHash === desired.hash) return false;
  const stable = stableModel(ctx, desired.hash);
  const existing = deployedByHash(ctx, desired.hash);
  // Another canary in flight for an older candidate: its traffic goes back to the stable model first.
  const abandoned = ctx.observed.deployedModels.filter(
    (d) => d.model.hash !== desired.hash && d.id !== stable?.id,
  );
  const first = percentOf(steps[0]);
  const shadow = steps[0] === 'shadow';
  const split: TrafficSplit = {};
  for (const d of ctx.observed.deployedModels) split[d.id] = 0;
  if (stable) split[stable.id] = 100;
  if (abandoned.length > 0) {
    ctx.plan.push({
      what: `move traffic of ${abandoned.map((d) => d.id).join(', ')} to stable ${stable!.id}`,
      apply: () => endpoint.setTraffic(split),
    });
    for (const d of abandoned)
      ctx.plan.push({
        what: `undeploy ${d.id} (${short(d.model.hash)})`,
        apply: () => endpoint.undeploy(d.id),
      });
  }
  const candidate: { id?: string } = { id: existing?.id };
  if (existing) {
    ctx.plan.push({
      what: `set ${existing.id} (${short(desired.hash)}) to ${first}%`,
      apply: () =>
        endpoint.setTraffic({
          ...split,
          [existing.id]: first,
          ...(stable ? { [stable.id]: 100 - first } : {}),
        }),
    });
  } else {
    ctx.plan.push({
      what: `deploy ${short(desired.hash)} at ${first}%${stable ? ` (stable ${stable.id} keeps ${100 - first}%)` : ''}`,
      apply: async () => {
        candidate.id = (await endpoint.deploy(desired, first)).id;
        if (ctx.status) ctx.status.candidate = candidate.id;
      },
    });
  }
  ctx.status = {
    candidateHash: desired.hash,
    ...(candidate.id ? { candidate: candidate.id } : {}),
    ...(stable ? { stable: stable.id } : {}),
    stepIndex: 0,
    phase: 'progressing',
    stepStartedAt: ctx.now.toISOString(),
    message: '',
    ...(shadow ? { shadow: true } : {}),
  };
  return settle(
    ctx,
    'start',
    `starting canary of ${short(desired.hash)}: ${stepLabel(ctx, 0)} ${stepWhere(steps[0])}${stable ? ` against stable ${stable.id} (${short(stable.model.hash)})` : ''}`,
  );
}

/** The candidate is in a step: judge it on the logs since the step started, then hold, advance, finish or roll back. */
async function reconcileStep(ctx: CanaryContext): Promise<boolean> {
  const s = ctx.status!;
  const { steps, endpoint, analysis: thresholds } = ctx.opts;
  const candidateId = s.candidate ?? deployedByHash(ctx, s.candidateHash)?.id;
  if (!candidateId) {
    // The candidate vanished (undeployed by hand): start over.
    ctx.status = undefined;
    return reconcileStart(ctx);
  }
  const stableId =
    s.stable && ctx.observed.deployedModels.some((d) => d.id === s.stable) ? s.stable : undefined;
  const entries = await ctx.opts.readLogs(new Date(s.stepStartedAt));
  const step = steps[s.stepIndex];
  const current = percentOf(step);
  const a = analyzeStep(entries, candidateId, stableId, thresholds, {
    percent: current,
    shadow: step === 'shadow',
  });
  ctx.analysis = a;
  const label = stepLabel(ctx, s.stepIndex);

  if (a.verdict === 'fail') {
    const back: TrafficSplit = Object.fromEntries(ctx.observed.deployedModels.map((d) => [d.id, 0]));
    if (stableId) back[stableId] = 100;
    if (stableId)
      ctx.plan.push({
        what: `set candidate ${candidateId} to 0%, stable ${stableId} to 100%`,
        apply: () => endpoint.setTraffic(back),
      });
    const { shadow: _shadow, ...rest } = s;
    ctx.status = {
      ...rest,
      candidate: candidateId,
      phase: 'rolled-back',
      stepStartedAt: ctx.now.toISOString(),
    };
    ctx.failed = true;
    return settle(
      ctx,
      'rollback',
      `${label} ${stepWhere(step)}: ${a.failures.join('; ')}: rolling back to stable ${stableId ?? '(none)'}, canary at 0%`,
    );
  }
  if (a.verdict === 'inconclusive') {
    ctx.action = 'hold';
    const more = a.needed - a.canary.requests;
    const why = a.neededBy
      ? `needs ${more} more for the ${a.neededBy}`
      : `needs ${more} more (min_requests ${thresholds.min_requests})`;
    ctx.reason = `${label}: ${a.canary.requests} of ${a.needed} canary requests since ${s.stepStartedAt}: holding ${step === 'shadow' ? 'in shadow' : `at ${current}%`}; ${why}`;
    return true;
  }
  const nextIndex = s.stepIndex + 1;
  const next = percentOf(steps[nextIndex]);
  const split: TrafficSplit = Object.fromEntries(ctx.observed.deployedModels.map((d) => [d.id, 0]));
  split[candidateId] = next;
  if (stableId) split[stableId] = 100 - next;
  ctx.plan.push({
    what: `set candidate ${candidateId} to ${next}%${stableId ? `, stable ${stableId} to ${100 - next}%` : ''}`,
    apply: () => endpoint.setTraffic(split),
  });
  const { shadow: _wasShadow, ...unshadowed } = s;
  if (next < 100) {
    ctx.status = {
      ...unshadowed,
      candidate: candidateId,
      stepIndex: nextIndex,
      stepStartedAt: ctx.now.toISOString(),
    };
    return settle(ctx, 'advance', `${label}: ${a.summary}: advancing to ${next}%`);
  }
  for (const d of ctx.observed.deployedModels.filter((d) => d.id !== candidateId)) {
    ctx.plan.push({
      what: `undeploy ${d.id} (${short(d.model.hash)})`,
      apply: () => endpoint.undeploy(d.id),
    });
  }
  ctx.status = {
    ...unshadowed,
    candidate: candidateId,
    stepIndex: steps.length - 1,
    phase: 'completed',
    stepStartedAt: ctx.now.toISOString(),
  };
  return settle(
    ctx,
    'complete',
    `${label}: ${a.summary}: completed all ${steps.length} canary steps; ${short(s.candidateHash)} serves 100%${stableId ? `, stable ${stableId} undeployed` : ''}`,
  );
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
  ctx.status = {
    candidateHash: ctx.opts.desired.hash,
    ...(ctx.status?.candidate ? { candidate: ctx.status.candidate } : {}),
    ...(stable ? { stable } : {}),
    stepIndex: ctx.status?.stepIndex ?? 0,
    phase: 'rolled-back',
    stepStartedAt: ctx.now.toISOString(),
    message: ctx.reason,
  };
}
