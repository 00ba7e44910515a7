/**
 * `lockstep start` (what `npm start` runs): reproduces the whole pipeline from
 * `stages/pipeline.ts`, then prints a summary: what ran or was skipped and why, the metrics, the
 * gate verdict and where the plots are.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('start')
    .description('run the whole pipeline (cached) and print a summary: stages, metrics, gate verdict, plots')
    .option('--pipeline <module>', 'module exporting pipeline(params) (default stages/pipeline.ts)')
    .option('-f, --force', 're-run every stage')
    .option(
      '--pull',
      'restore locked outs missing from the cache from the default remote instead of re-running',
    )
    .option('--json', 'print the summary as JSON')
    .action(async (opts: { pipeline?: string; force?: boolean; json?: boolean; pull?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { runRepro } = await import('./repro.ts');
      const { summarizeRun, formatSummary } = await import('../../pipeline/summary.ts');
      const { assertRunSucceeded } = await import('../../pipeline/run.ts');
      const repo = findRepo(io.cwd);
      const report = await runRepro(
        repo,
        [],
        { pipeline: opts.pipeline, force: opts.force, pull: opts.pull },
        io,
      );
      const summary = await summarizeRun(repo, report);
      if (opts.json) io.out(JSON.stringify(summary, null, 2));
      else for (const line of formatSummary(summary)) io.out(line);
      assertRunSucceeded(report);
    });
}
