/**
 * What one reconcile pass sees and computes (Argo Rollouts' rollout context): the options, the
 * observed endpoint, the status being computed and the planned actions, with the small readings
 * of the observed state every reconcile step shares.
 */
import type { CanaryStatus, EndpointDescription } from '../serving/endpoint.ts';
import type { CanaryStep } from '../environment/policy.ts';
import type { Analysis } from './analysis.ts';
import type { CanaryAction, ReconcileOptions } from './reconcile.ts';
import { withMessage } from './status.ts';

export interface CanaryContext {
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

export const short = (hash: string) => hash.slice(0, 12);

export function trafficOf(ctx: CanaryContext, id: string | undefined): number {
  return id === undefined ? 0 : (ctx.observed.trafficSplit[id] ?? 0);
}

export function deployedByHash(ctx: CanaryContext, hash: string) {
  return ctx.observed.deployedModels.find((d) => d.model.hash === hash);
}

/** The model serving most traffic other than `exceptHash` (the stable one). */
export function stableModel(ctx: CanaryContext, exceptHash: string) {
  return ctx.observed.deployedModels
    .filter((d) => d.model.hash !== exceptHash)
    .sort((a, b) => trafficOf(ctx, b.id) - trafficOf(ctx, a.id) || Number(a.id) - Number(b.id))[0];
}

export function settle(ctx: CanaryContext, action: CanaryAction, reason: string): true {
  ctx.action = action;
  ctx.reason = reason;
  if (ctx.status) ctx.status = withMessage(ctx.status, reason);
  return true;
}

export function stepLabel(ctx: CanaryContext, index: number): string {
  return `step ${index + 1}/${ctx.opts.steps.length}`;
}

/** Traffic of a step: `shadow` takes none (it only sees mirrored requests). */
export function percentOf(step: CanaryStep | undefined): number {
  return step === 'shadow' ? 0 : (step ?? 100);
}

/** "at 25%" or "in shadow (0% traffic, every request mirrored)". */
export function stepWhere(step: CanaryStep): string {
  return step === 'shadow' ? 'in shadow' : `at ${step}%`;
}
