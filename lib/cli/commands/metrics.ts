/**
 * `lockstep metrics diff [a] [b] [--md] [--json] [--changed]`: metrics recorded in the lockfile
 * at two revisions (default HEAD vs the workspace), with delta and %.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { registerDiffCommand } from '../diff-command.ts';

export function register(program: Command, io: CliIO): void {
  const metrics = program.command('metrics').description('inspect metrics recorded in the lockfile');
  metrics
    .command('show')
    .description('metrics of a revision (default the workspace)')
    .argument('[rev]', 'revision, or "workspace"', 'workspace')
    .option('--json', 'print as JSON')
    .action(async (rev: string, opts: { json?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { metricsAt } = await import('../../pipeline/revisions.ts');
      const { formatValue } = await import('../../pipeline/diff.ts');
      const m = await metricsAt(findRepo(io.cwd), rev);
      if (opts.json) io.out(JSON.stringify(m, null, 2));
      else for (const [k, v] of Object.entries(m)) io.out(`${k}  ${formatValue(v)}`);
    });
  registerDiffCommand(metrics, io, {
    description: 'metrics between two revisions (default HEAD vs workspace), with delta and %',
    keyHeader: 'metric',
    flag: { name: 'changed', help: 'list changed metrics only' },
    rows: async (repo, a, b, changed) => {
      const { metricsAt } = await import('../../pipeline/revisions.ts');
      const { diffMetrics } = await import('../../pipeline/diff.ts');
      return diffMetrics(await metricsAt(repo, a), await metricsAt(repo, b), { all: !changed });
    },
  });
}
