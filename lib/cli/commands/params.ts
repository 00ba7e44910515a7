/**
 * `lockstep params diff [a] [b] [--md] [--json] [--all]`: params that differ between two
 * revisions (default HEAD vs the workspace), read from git objects.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { registerDiffCommand } from '../diff-command.ts';

export function register(program: Command, io: CliIO): void {
  const params = program.command('params').description('inspect params.yaml');
  registerDiffCommand(params, io, {
    description: 'params that differ between two revisions (default HEAD vs workspace)',
    keyHeader: 'param',
    flag: { name: 'all', help: 'list unchanged params too' },
    rows: async (repo, a, b, all) => {
      const [{ paramsAt }, { diffParams }] = await Promise.all([
        import('../../pipeline/revisions.ts'),
        import('../../pipeline/diff.ts'),
      ]);
      return diffParams(await paramsAt(repo, a), await paramsAt(repo, b), { all });
    },
  });
}
