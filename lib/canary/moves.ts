/**
 * The reconcile steps that move the endpoint without judging the candidate, in the order the
 * controller tries them: a first deploy, a pending revert pull request, an earlier rollback, the
 * steady state, a revert while a canary is in flight, and the start of a new canary.
 */
import type { TrafficSplit } from '../serving/endpoint.ts';
import {
  deployedByHash,
  percentOf,
  settle,
  short,
  stableModel,
  stepLabel,
  stepWhere,
  trafficOf,
  type CanaryContext,
} from './context.ts';
import { completedStatus, progressingStatus } from './status.ts';

/** Nothing deployed yet: the desired model takes 100% (there is no stable model to compare against). */
export function reconcileFirstDeploy(ctx: CanaryContext): boolean {
  if (ctx.observed.deployedModels.length > 0) return false;
  const { desired } = ctx.opts;
  ctx.plan.push({
    what: `deploy ${short(desired.hash)} at 100%`,
    apply: async () => {
      const dm = await ctx.opts.endpoint.deploy(desired, 100);
      if (ctx.status) ctx.status.candidate = dm.id;
    },
  });
  ctx.status = completedStatus(desired.hash, { stepIndex: ctx.opts.steps.length - 1, now: ctx.now });
  return settle(
    ctx,
    'deploy',
    `first deploy: ${short(desired.hash)} serves 100% (no stable model to compare against)`,
  );
}

/** The desired model already serves everything: undeploy leftovers (0% models), otherwise nothing to do. */
export function reconcileSteady(ctx: CanaryContext): boolean {
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
    ctx.status = completedStatus(desired.hash, {
      candidate: dm.id,
      stepIndex: ctx.opts.steps.length - 1,
      now: ctx.now,
    });
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
export function reconcileRevertPending(ctx: CanaryContext): boolean {
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
export function reconcileRolledBack(ctx: CanaryContext): boolean {
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
export function reconcileRevert(ctx: CanaryContext): boolean {
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
  ctx.status = completedStatus(desired.hash, {
    candidate: existing.id,
    stepIndex: ctx.opts.steps.length - 1,
    now: ctx.now,
  });
  return settle(
    ctx,
    'rollback',
    `canary of ${short(s.candidateHash)} abandoned: ${short(desired.hash)} is pinned again and serves 100%`,
  );
}

/** A new desired model: deploy it at the first step (aborting any other canary in flight). */
export function reconcileStart(ctx: CanaryContext): boolean {
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
  ctx.status = progressingStatus(desired.hash, {
    candidate: candidate.id,
    stable: stable?.id,
    stepIndex: 0,
    now: ctx.now,
    shadow,
  });
  return settle(
    ctx,
    'start',
    `starting canary of ${short(desired.hash)}: ${stepLabel(ctx, 0)} ${stepWhere(steps[0])}${stable ? ` against stable ${stable.id} (${short(stable.model.hash)})` : ''}`,
  );
}
