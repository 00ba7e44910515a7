/**
 * Process liveness, for telling a live holder's file (a lock, a temp file) from a dead one's.
 */

/** True when process `pid` exists on this host (EPERM means it exists but is not ours). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
