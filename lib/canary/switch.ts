/**
 * An immediate switch, the way an aborted rollout returns to stable: `model` takes 100% of the
 * traffic in one traffic change (deployed first at 100% if it is not deployed), every other
 * model is undeployed, and the canary status records the replaced model as rolled back, so a
 * reconcile before git catches up (a revert pull request not merged yet) keeps `model` serving
 * instead of canarying the replaced model again. No analysis, no steps.
 */
import type { Endpoint, ModelRef, TrafficSplit } from '../serving/endpoint.ts';
import { completedStatus, rolledBackStatus } from './status.ts';

export interface SwitchResult {
  /** Deployed model id now serving 100%. */
  serving: string;
  /** Hash of the model that served most traffic before (undefined if it was `model`). */
  replaced?: string;
  /** What was done, in order. */
  plan: string[];
}

const short = (h: string) => h.slice(0, 12);

/** Sends all traffic to `model` at once and undeploys the rest; `reason` goes in the canary status. */
export async function switchTraffic(
  endpoint: Endpoint,
  model: ModelRef,
  reason: string,
  options: { dry?: boolean; now?: Date } = {},
): Promise<SwitchResult> {
  const before = await endpoint.describe();
  const top = [...before.deployedModels].sort(
    (a, b) => (before.trafficSplit[b.id] ?? 0) - (before.trafficSplit[a.id] ?? 0),
  )[0];
  const replaced = top && top.model.hash !== model.hash ? top : undefined;
  const plan: string[] = [];
  // An endpoint that serves nothing has no traffic to move (git alone decides what deploys next).
  if (before.deployedModels.length === 0)
    return { serving: '(none)', plan: ['nothing deployed: no traffic to move'] };
  let target = before.deployedModels.find((d) => d.model.hash === model.hash);
  if (!target) plan.push(`deploy ${short(model.hash)} at 100%`);
  plan.push(
    `set ${short(model.hash)} to 100%${replaced ? `, ${replaced.id} (${short(replaced.model.hash)}) to 0%` : ''}`,
  );
  for (const d of before.deployedModels.filter((d) => d.model.hash !== model.hash))
    plan.push(`undeploy ${d.id} (${short(d.model.hash)})`);
  if (options.dry) return { serving: target?.id ?? '(new)', replaced: replaced?.model.hash, plan };

  target ??= await endpoint.deploy(model, 100);
  const now = await endpoint.describe();
  const split: TrafficSplit = Object.fromEntries(
    now.deployedModels.map((d) => [d.id, d.id === target!.id ? 100 : 0]),
  );
  await endpoint.setTraffic(split);
  for (const d of now.deployedModels) if (d.id !== target.id) await endpoint.undeploy(d.id);
  const at = options.now ?? new Date();
  const status = replaced
    ? rolledBackStatus(replaced.model.hash, {
        candidate: replaced.id,
        stable: target.id,
        stepIndex: 0,
        now: at,
        message: reason,
      })
    : completedStatus(model.hash, { candidate: target.id, stepIndex: 0, now: at, message: reason });
  await endpoint.writeCanaryStatus(status);
  return { serving: target.id, replaced: replaced?.model.hash, plan };
}
