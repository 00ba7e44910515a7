/**
 * `lockstep metrics diff [a] [b] [--md] [--json] [--changed]`: metrics recorded in the lockfile
 * at two revisions (default HEAD vs the workspace), with delta and %.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

/** Full commit ids are shortened in table headers (JSON keeps them whole). */
const shortRev = (rev: string) => (/^[0-9a-f]{40,64}$/.test(rev) ? rev.slice(0, 10) : rev);

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
  metrics
    .command('diff')
    .description('metrics between two revisions (default HEAD vs workspace), with delta and %')
    .argument('[a]', 'old revision', 'HEAD')
    .argument('[b]', 'new revision, or "workspace"', 'workspace')
    .option('--md', 'Markdown table (for PR comments)')
    .option('--json', 'print rows as JSON')
    .option('--changed', 'list changed metrics only')
    .action(async (a: string, b: string, opts: { md?: boolean; json?: boolean; changed?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { metricsAt } = await import('../../pipeline/revisions.ts');
      const { diffMetrics, renderDiffTable } = await import('../../pipeline/diff.ts');
      const repo = findRepo(io.cwd);
      const rows = diffMetrics(await metricsAt(repo, a), await metricsAt(repo, b), { all: !opts.changed });
      if (opts.json) io.out(JSON.stringify({ a, b, rows }, null, 2));
      else
        io.out(
          renderDiffTable(rows, {
            markdown: opts.md,
            labels: [shortRev(a), shortRev(b)],
            keyHeader: 'metric',
          }),
        );
    });
}
