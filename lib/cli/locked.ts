/**
 * Commands that change an endpoint and an environment branch together (canary reconcile,
 * rollback) hold the repository lock while they run, so two of them at once cannot both read
 * the same state and both act on it (two traffic steps, two rollback commits). A second one waits
 * for the first, saying who holds the lock, and then sees what the first did. `--dry` changes
 * nothing and takes no lock.
 */
import type { CliIO } from './main.ts';

export async function whileLocked<T>(
  io: CliIO,
  command: string,
  dry: boolean | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (dry) return fn();
  const { findRepo } = await import('../repo.ts');
  const { withRepoLock } = await import('../lock.ts');
  return withRepoLock(findRepo(io.cwd), command, fn, { out: io });
}
