/**
 * Vertex AI label and alias helpers, free of the client library so that commands which only may
 * talk to Vertex AI (promote, rollback, canary on a local endpoint) do not load it.
 */
import type { CanaryStatus } from '../serving/endpoint.ts';

/** Label values: lower-case letters, digits, `_` and `-`, at most 63 characters. */
export function labelValue(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .slice(0, 63);
}

/** A 64-hex hash as two labels (a label value holds at most 63 characters). */
export function hashLabels(prefix: string, hash: string): Record<string, string> {
  return { [`${prefix}hash-a`]: hash.slice(0, 32), [`${prefix}hash-b`]: hash.slice(32) };
}

export function hashFromLabels(
  prefix: string,
  labels: Record<string, string> | null | undefined,
): string | undefined {
  const a = labels?.[`${prefix}hash-a`];
  const b = labels?.[`${prefix}hash-b`];
  return a && b ? a + b : undefined;
}

/** The aliases an environment's version carries: its name, and `default` for prod. */
export function environmentAliases(env: string): string[] {
  return env === 'prod' ? ['prod', 'default'] : [env];
}

const CANARY = 'lockstep-canary-';

/** True for the labels that carry the canary status (so writing a new status drops the old). */
export function isCanaryLabel(key: string): boolean {
  return key.startsWith(CANARY);
}

/** Canary status as endpoint labels (values: lower-case letters, digits, `-`, at most 63 chars). */
export function canaryLabels(s: CanaryStatus): Record<string, string> {
  return {
    [`${CANARY}phase`]: s.phase,
    [`${CANARY}step`]: String(s.stepIndex),
    [`${CANARY}since`]: String(Date.parse(s.stepStartedAt)),
    ...(s.candidate ? { [`${CANARY}candidate`]: s.candidate } : {}),
    ...(s.stable ? { [`${CANARY}stable`]: s.stable } : {}),
    ...hashLabels(CANARY, s.candidateHash),
  };
}

/** The canary status an endpoint's labels carry, if any. */
export function readCanaryLabels(labels: Record<string, string>): CanaryStatus | undefined {
  const phase = labels[`${CANARY}phase`] as CanaryStatus['phase'] | undefined;
  const candidateHash = hashFromLabels(CANARY, labels);
  if (!phase || !candidateHash) return undefined;
  const stepIndex = Number(labels[`${CANARY}step`] ?? 0);
  return {
    candidateHash,
    ...(labels[`${CANARY}candidate`] ? { candidate: labels[`${CANARY}candidate`] } : {}),
    ...(labels[`${CANARY}stable`] ? { stable: labels[`${CANARY}stable`] } : {}),
    stepIndex,
    phase,
    stepStartedAt: new Date(Number(labels[`${CANARY}since`] ?? 0)).toISOString(),
    message: `${phase} at step ${stepIndex + 1}`,
  };
}
