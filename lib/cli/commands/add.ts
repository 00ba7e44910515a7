/**
 * `lockstep add <path...>`: like `dvc add`. Hashes the paths into the cache, records them under
 * `data:` in artifacts.lock.yaml and adds them to .gitignore.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { formatBytes } from '../../store/format.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('add')
    .description('track data files or directories: hash them into the cache and record them in the lockfile')
    .argument('<path...>', 'files or directories inside the repository')
    .option('--json', 'print the recorded artifacts as JSON')
    .action(async (paths: string[], opts: { json?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { withRepoLock } = await import('../../lock.ts');
      const { addPaths } = await import('../../store/add.ts');
      const repo = findRepo(io.cwd);
      const refs = await withRepoLock(repo, 'add', () => addPaths(repo, paths, { cwd: io.cwd, out: io }), {
        out: io,
      });
      if (opts.json) {
        io.out(JSON.stringify(refs, null, 2));
        return;
      }
      for (const ref of refs) {
        const what = ref.dir ? `${ref.nfiles} files, ${formatBytes(ref.size)}` : formatBytes(ref.size);
        io.out(`added ${ref.path} (${what}) ${ref.hash.slice(0, 12)}`);
      }
    });
}
