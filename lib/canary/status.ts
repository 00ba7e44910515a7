/**
 * The canary status, built in one place: every status the controller (and the manual switch)
 * persists with the endpoint is made by one of these functions, so its fields and their meaning
 * cannot drift between the places that decide a phase.
 */
import type { CanaryStatus } from '../serving/endpoint.ts';
import type { CanaryStep } from '../environment/policy.ts';

/** The time fields start from. */
type At = { now: Date; message?: string };

type StatusFields = At & { candidate?: string; stable?: string; stepIndex: number };

/** The one shape of a status; the field order is fixed (reconcile compares statuses as JSON). */
function statusOf(
  phase: CanaryStatus['phase'],
  hash: string,
  o: StatusFields & { shadow?: boolean },
): CanaryStatus {
  return {
    candidateHash: hash,
    ...(o.candidate ? { candidate: o.candidate } : {}),
    ...(o.stable ? { stable: o.stable } : {}),
    stepIndex: o.stepIndex,
    phase,
    stepStartedAt: o.now.toISOString(),
    message: o.message ?? '',
    ...(o.shadow ? { shadow: true } : {}),
  };
}

/**
 * `hash` serves 100% (a first deploy, a finished canary, a revert or a manual switch); `stable`
 * is the model it replaced, when a canary just completed.
 */
export function completedStatus(hash: string, o: StatusFields): CanaryStatus {
  return statusOf('completed', hash, o);
}

/** A canary of `hash` at step `stepIndex` (0: its first step, a shadow one when `shadow`). */
export function progressingStatus(hash: string, o: StatusFields & { shadow?: boolean }): CanaryStatus {
  return statusOf('progressing', hash, o);
}

/** The canary of `hash` failed at `stepIndex`: it is at 0% and `stable` serves. */
export function rolledBackStatus(hash: string, o: StatusFields): CanaryStatus {
  return statusOf('rolled-back', hash, o);
}

/** `s` with its human reason replaced (the reason of the latest reconcile). */
export function withMessage(s: CanaryStatus, message: string): CanaryStatus {
  return { ...s, message };
}

/**
 * One line for people: "progressing, step 2, candidate 1a2b3c4d5e6f (shadow): <message>". Given
 * the policy's `steps`, the step is placed among them and dated: "progressing, step 2 of 4
 * (10 → 25 → 50 → 100%), candidate 1a2b3c4d5e6f since 2026-12-01T10:00:00.000Z: <message>"; a
 * completed one "completed, serving 100%, candidate …". Without a message, no trailing colon.
 */
export function describeCanaryStatus(s: CanaryStatus, steps?: readonly CanaryStep[]): string {
  // A completed canary serves 100% whatever its step index says (a manual switch completes at 0);
  // a policy edited during a canary may have fewer steps than the one the canary started under.
  const step = !steps
    ? `step ${s.stepIndex + 1}`
    : s.phase === 'completed'
      ? 'serving 100%'
      : s.stepIndex < steps.length
        ? `step ${s.stepIndex + 1} of ${steps.length} (${steps.join(' → ')}%)`
        : `step ${s.stepIndex + 1} (the policy now has ${steps.length}: ${steps.join(' → ')}%)`;
  const since = steps ? ` since ${s.stepStartedAt}` : '';
  const message = s.message ? `: ${s.message}` : '';
  return `${s.phase}, ${step}, candidate ${s.candidateHash.slice(0, 12)}${s.shadow ? ' (shadow)' : ''}${since}${message}`;
}
