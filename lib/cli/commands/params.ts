/**
 * `lockstep params diff [a] [b] [--md] [--json] [--all]`: params that differ between two
 * revisions (default HEAD vs the workspace), read from git objects.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

/** Full commit ids are shortened in table headers (JSON keeps them whole). */
const shortRev = (rev: string) => (/^[0-9a-f]{40,64}$/.test(rev) ? rev.slice(0, 10) : rev);

export function register(program: Command, io: CliIO): void {
  const params = program.command('params').description('inspect params.yaml');
  params
    .command('diff')
    .description('params that differ between two revisions (default HEAD vs workspace)')
    .argument('[a]', 'old revision', 'HEAD')
    .argument('[b]', 'new revision, or "workspace"', 'workspace')
    .option('--md', 'Markdown table (for PR comments)')
    .option('--json', 'print rows as JSON')
    .option('--all', 'list unchanged params too')
    .action(async (a: string, b: string, opts: { md?: boolean; json?: boolean; all?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { paramsAt } = await import('../../pipeline/revisions.ts');
      const { diffParams, renderDiffTable } = await import('../../pipeline/diff.ts');
      const repo = findRepo(io.cwd);
      const rows = diffParams(await paramsAt(repo, a), await paramsAt(repo, b), { all: opts.all });
      if (opts.json) io.out(JSON.stringify({ a, b, rows }, null, 2));
      else
        io.out(
          renderDiffTable(rows, {
            markdown: opts.md,
            labels: [shortRev(a), shortRev(b)],
            keyHeader: 'param',
          }),
        );
    });
}
