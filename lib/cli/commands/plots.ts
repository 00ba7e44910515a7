/**
 * `lockstep plots show [rev]` and `lockstep plots diff [rev ...]`: learning curves, confusion
 * matrices, per-class F1, slice metrics and monitoring histograms of revisions (commits,
 * branches, tags, environments, experiments, `workspace`), read from the lockfile at each
 * revision and the cache or remote, without a checkout. Writes SVG, PNG and Vega-Lite per plot
 * and one offline `index.html`; `--json` prints the specs instead.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

interface PlotsCliOptions {
  out?: string;
  json?: boolean;
}

async function runPlots(io: CliIO, revs: string[], opts: PlotsCliOptions): Promise<void> {
  const { findRepo } = await import('../../repo.ts');
  const { defaultRemote } = await import('../../store/remote-config.ts');
  const { plotRevisions, writePlotsOutput } = await import('../../plots/output.ts');
  const repo = findRepo(io.cwd);
  const result = await plotRevisions(repo, revs, { remote: await defaultRemote(repo) });
  if (opts.json) {
    io.out(JSON.stringify(result, null, 2));
    return;
  }
  for (const r of result.revisions) for (const n of r.notes) io.err(`${r.rev}: ${n}`);
  if (result.plots.length === 0) {
    const { LockstepError } = await import('../../errors.ts');
    throw new LockstepError(
      `${revs.join(', ')}: nothing to plot (no evaluate outputs). Run lockstep repro, or name revisions whose lockfile pins out/eval.`,
    );
  }
  const dir = path.resolve(io.cwd, opts.out ?? path.join(repo.root, 'out', 'plots'));
  const page = await writePlotsOutput(dir, result);
  io.out(
    `${result.plots.length} plot(s): ${result.plots.map((p) => p.name).join(', ')} (.vl.json, .svg, .png) in ${path.relative(io.cwd, dir) || '.'}`,
  );
  io.out(`open ${path.relative(io.cwd, page)}`);
}

export function register(program: Command, io: CliIO): void {
  const plots = program
    .command('plots')
    .description('plots of revisions: learning curves, confusion, per-class F1, slices, monitoring');
  const common = (c: Command) =>
    c
      .option('-o, --out <dir>', 'output directory (default out/plots)')
      .option('--json', 'print the revisions and the Vega-Lite specs as JSON; write nothing');
  common(
    plots
      .command('show')
      .description('plots of one revision (default the workspace)')
      .argument('[rev]', 'commit, branch, tag, environment, experiment or "workspace"', 'workspace'),
  ).action((rev: string, opts: PlotsCliOptions) => runPlots(io, [rev], opts));
  common(
    plots
      .command('diff')
      .description('plots of revisions together (default HEAD vs the workspace)')
      .argument('[revs...]', 'commits, branches, tags, environments, experiments or "workspace"'),
  ).action((revs: string[], opts: PlotsCliOptions) =>
    runPlots(
      io,
      revs.length === 0 ? ['HEAD', 'workspace'] : revs.length === 1 ? [revs[0]!, 'workspace'] : revs,
      opts,
    ),
  );
}
