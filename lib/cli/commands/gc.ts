/** `lockstep gc`: delete cache objects no kept lockfile references (branches, tags, last N commits). */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { formatBytes, parsePositiveInt, wrap } from '../../store/format.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('gc')
    .description(
      'delete cache objects not referenced by the lockfile in the workspace, on any branch or tag, or in the last N commits',
    )
    .option(
      '--keep-last <n>',
      'also keep lockfiles of the last N commits of HEAD (default 10)',
      wrap(parsePositiveInt('--keep-last')),
    )
    .option('--dry', 'print what would be deleted, delete nothing')
    .option('--json', 'print the plan as JSON')
    .action(async (opts: { keepLast?: number; dry?: boolean; json?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { withRepoLock } = await import('../../lock.ts');
      const { collectGarbage } = await import('../../store/gc.ts');
      const repo = findRepo(io.cwd);
      // The lock keeps a concurrent add or repro from inserting objects gc has not seen referenced.
      const plan = await withRepoLock(
        repo,
        'gc',
        () => collectGarbage(repo, { keepLast: opts.keepLast, dryRun: opts.dry, out: io }),
        { out: io },
      );
      if (opts.json) {
        io.out(JSON.stringify(plan, null, 2));
        return;
      }
      const verb = plan.dryRun ? 'would delete' : 'deleted';
      if (plan.dryRun) for (const d of plan.deleted) io.out(`${verb} ${d.oid} (${formatBytes(d.size)})`);
      io.out(
        `${verb} ${plan.deleted.length} objects (${formatBytes(plan.bytes)}), kept ${plan.kept}; run-cache entries dropped: ${plan.runEntries}; lockfiles read: ${plan.roots.length}`,
      );
    });
}
