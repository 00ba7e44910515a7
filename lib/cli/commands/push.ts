/** `lockstep push`: upload every object the current lockfile needs that the remote lacks. */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { formatBytes, parsePositiveInt, wrap } from '../../store/format.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('push')
    .description('upload the data and stage outputs the lockfile references to the remote')
    .option('-r, --remote <url>', 'remote URL or directory (default: the configured remote)')
    .option('-j, --jobs <n>', 'concurrent uploads (default 8)', wrap(parsePositiveInt('--jobs', 1)))
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { remote?: string; jobs?: number; json?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { withRepoLock } = await import('../../lock.ts');
      const { pushLockfile } = await import('../../store/sync.ts');
      const repo = findRepo(io.cwd);
      const r = await withRepoLock(
        repo,
        'push',
        () => pushLockfile(repo, { remote: opts.remote, jobs: opts.jobs || undefined, out: io, cwd: io.cwd }),
        { out: io },
      );
      if (opts.json) io.out(JSON.stringify(r, null, 2));
      else
        io.out(
          `pushed ${r.transferred} objects (${formatBytes(r.bytes)}) to ${r.remote}; ${r.skipped} already there`,
        );
    });
}
