/**
 * Vertex AI label and alias helpers, free of the client library so that commands which only may
 * talk to Vertex AI (promote, rollback, canary on a local endpoint) do not load it.
 */

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
