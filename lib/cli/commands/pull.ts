/** `lockstep pull`: download what the current lockfile needs (verified) and check it out. */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { formatBytes, parsePositiveInt, wrap } from '../../store/format.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('pull')
    .description('download the data and stage outputs the lockfile references, then check them out')
    .option('-r, --remote <url>', 'remote URL or directory (default: the configured remote)')
    .option('-j, --jobs <n>', 'concurrent downloads (default 8)', wrap(parsePositiveInt('--jobs', 1)))
    .option('--no-checkout', 'only fill the cache; leave the workspace as it is')
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { remote?: string; jobs?: number; json?: boolean; checkout: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { withRepoLock } = await import('../../lock.ts');
      const { pullLockfile } = await import('../../store/sync.ts');
      const repo = findRepo(io.cwd);
      const r = await withRepoLock(
        repo,
        'pull',
        () =>
          pullLockfile(repo, {
            remote: opts.remote,
            jobs: opts.jobs || undefined,
            out: io,
            cwd: io.cwd,
            checkout: opts.checkout,
          }),
        { out: io },
      );
      if (opts.json) {
        io.out(JSON.stringify(r, null, 2));
        return;
      }
      io.out(
        `pulled ${r.transferred} objects (${formatBytes(r.bytes)}) from ${r.remote}; ${r.skipped} already cached`,
      );
      for (const p of r.checkedOut) io.out(`checked out ${p}`);
    });
}
