/**
 * `lockstep lock resolve | install-driver | merge-driver`: merging `artifacts.lock.yaml` per stage.
 * `install-driver` makes git do it on every merge; `resolve` does it after git left conflict
 * markers; `merge-driver` is what git runs (the same as bin/lockstep-merge-driver.mjs).
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

export function register(program: Command, io: CliIO): void {
  const lock = program
    .command('lock')
    .description('merge artifacts.lock.yaml per stage (git merge driver, conflicts)');
  lock
    .command('resolve')
    .description(
      'replace a conflicted lockfile with its per-stage merge, stage it, and print what became stale',
    )
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: { json?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { withRepoLock } = await import('../../lock.ts');
      const { resolveLockfileConflict, formatMergeOutcome } = await import('../../lockfile-conflict.ts');
      const { LockstepError } = await import('../../errors.ts');
      const repo = findRepo(io.cwd);
      const result = await withRepoLock(repo, 'lock resolve', () => resolveLockfileConflict(repo), {
        out: io,
      });
      if (opts.json) {
        const { lockfile: _lockfile, ...rest } = result;
        io.out(JSON.stringify(rest, null, 2));
      } else if (!result.resolved) io.out('artifacts.lock.yaml: no conflict markers, nothing to resolve');
      else {
        io.out(`artifacts.lock.yaml: merged per stage${result.staged ? ' and staged (git add)' : ''}`);
        for (const line of formatMergeOutcome(result)) io.out(line);
        if (result.dropped.length > 0) io.out('next: npx lockstep repro, then git commit');
      }
      if (result.dataConflicts.length > 0) {
        throw new LockstepError(
          `artifacts.lock.yaml: ${result.dataConflicts.length} tracked data path(s) changed on both sides "${result.dataConflicts.map((c) => c.path).join(', ')}". Run "npx lockstep add <path>" for each, then "git add artifacts.lock.yaml".`,
        );
      }
    });
  lock
    .command('install-driver')
    .description(
      'make git merge artifacts.lock.yaml per stage: .gitattributes and the merge.lockstep git config',
    )
    .option('--no-attributes', 'only set the git config, leave .gitattributes alone')
    .action(async (opts: { attributes: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { installMergeDriver } = await import('../../lockfile-driver.ts');
      const repo = findRepo(io.cwd);
      const r = await installMergeDriver(repo.root, { attributes: opts.attributes });
      io.out(`git config merge.lockstep.driver: ${r.configChanged ? 'set to' : 'already'} ${r.driver}`);
      if (opts.attributes)
        io.out(
          `.gitattributes: ${r.attributesChanged ? 'added' : 'already has'} "artifacts.lock.yaml merge=lockstep"`,
        );
      if (r.attributesChanged)
        io.out('next: git add .gitattributes && git commit, so every clone merges the same way');
    });
  lock
    .command('merge-driver')
    .description('the merge driver git runs (%O %A %B %P); install it with install-driver')
    .argument('<base>')
    .argument('<ours>', 'also where the result is written')
    .argument('<theirs>')
    .argument('[path]', 'the path being merged', 'artifacts.lock.yaml')
    .action(async (base: string, ours: string, theirs: string, name: string) => {
      const { runMergeDriver } = await import('../../lockfile-driver.ts');
      const { LockstepError } = await import('../../errors.ts');
      const code = await runMergeDriver([base, ours, theirs, name], io.err);
      if (code !== 0)
        throw new LockstepError(`${name}: the merge left a conflict. See the lines above.`, {
          exitCode: code,
        });
    });
}
