/**
 * Fault injection for the cache write path, so tests can prove a full disk leaves nothing
 * half-written. `LOCKSTEP_FAULT=enospc-after:<n>` lets the first `n` object writes of the process
 * succeed and makes every later one fail with ENOSPC part-way through its bytes.
 */
let remaining: number | undefined | null = null;

function parseFault(): number | undefined {
  const spec = process.env.LOCKSTEP_FAULT;
  if (!spec) return undefined;
  const match = /^enospc-after:(\d+)$/.exec(spec);
  return match ? Number(match[1]) : undefined;
}

/** Counts one object write; true when this write must fail with ENOSPC. */
export function takeWriteFault(): boolean {
  if (remaining === null) remaining = parseFault();
  if (remaining === undefined) return false;
  if (remaining > 0) {
    remaining--;
    return false;
  }
  return true;
}

/** Re-reads `LOCKSTEP_FAULT` (tests change it between cases). */
export function resetWriteFaults(): void {
  remaining = null;
}
