/**
 * The judged step: the candidate is in a canary step, so the analysis of the logs since the step
 * started decides whether to hold, advance, complete or roll back.
 */
import type { TrafficSplit } from '../serving/endpoint.ts';
import { analyzeStep } from './analysis.ts';
import {
  deployedByHash,
  percentOf,
  settle,
  short,
  stepLabel,
  stepWhere,
  type CanaryContext,
} from './context.ts';
import { reconcileStart } from './moves.ts';
import { completedStatus, progressingStatus, rolledBackStatus } from './status.ts';

/** The candidate is in a step: judge it on the logs since the step started, then hold, advance, finish or roll back. */
export async function reconcileStep(ctx: CanaryContext): Promise<boolean> {
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
    ctx.status = rolledBackStatus(s.candidateHash, {
      candidate: candidateId,
      stable: s.stable,
      stepIndex: s.stepIndex,
      now: ctx.now,
      message: s.message,
    });
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
  if (next < 100) {
    // Past the first step, never a shadow one (only the first step can be).
    ctx.status = progressingStatus(s.candidateHash, {
      candidate: candidateId,
      stable: s.stable,
      stepIndex: nextIndex,
      now: ctx.now,
      message: s.message,
    });
    return settle(ctx, 'advance', `${label}: ${a.summary}: advancing to ${next}%`);
  }
  for (const d of ctx.observed.deployedModels.filter((d) => d.id !== candidateId)) {
    ctx.plan.push({
      what: `undeploy ${d.id} (${short(d.model.hash)})`,
      apply: () => endpoint.undeploy(d.id),
    });
  }
  ctx.status = completedStatus(s.candidateHash, {
    candidate: candidateId,
    stable: s.stable,
    stepIndex: steps.length - 1,
    now: ctx.now,
    message: s.message,
  });
  return settle(
    ctx,
    'complete',
    `${label}: ${a.summary}: completed all ${steps.length} canary steps; ${short(s.candidateHash)} serves 100%${stableId ? `, stable ${stableId} undeployed` : ''}`,
  );
}
