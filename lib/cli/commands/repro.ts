/**
 * `lockstep repro [stage...] [--dry] [--force] [--json] [--pipeline <module>]`: plans (a reason
 * per stage), then runs what changed. Exit 1 when a stage fails (naming the skipped dependents)
 * or a gate says no.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import type { Repo } from '../../repo.ts';
import type { Output } from '../../output.ts';
import type { RunReport } from '../../pipeline/run.ts';

export interface ReproCliOptions {
  dry?: boolean;
  force?: boolean;
  json?: boolean;
  pipeline?: string;
  jobs?: string;
  pull?: boolean;
  /** A lockfile whose recorded stage inputs (a gate's baseline) this run resolves to. */
  pinInputs?: string;
  /** `local` or `vertex`: where every stage computes this run (default: compute: in config). */
  compute?: string;
}

/** Loads params and the pipeline, then reproduces. Shared by `repro` and `start`. */
export async function runRepro(
  repo: Repo,
  targets: string[],
  opts: ReproCliOptions,
  io: Output & { cwd: string },
): Promise<RunReport> {
  const { loadParams } = await import('../../params.ts');
  const { loadPipeline } = await import('../../pipeline/load.ts');
  const { reproduce } = await import('../../pipeline/run.ts');
  const { UsageError } = await import('../../errors.ts');
  const jobs = opts.jobs === undefined ? undefined : Number(opts.jobs);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1)) {
    throw new UsageError(`--jobs: expected a positive integer "${opts.jobs}". Pass e.g. --jobs 2.`);
  }
  const params = loadParams(repo);
  const factory = await loadPipeline(repo, opts.pipeline, io.cwd);
  const stages = factory(params);
  // Where stages compute is checked before anything runs (a bad machine type, a missing image).
  const { resolveCompute } = await import('../../compute/resolve.ts');
  const computePlan = resolveCompute(repo, stages, opts.compute);
  let executor;
  if (computePlan.vertex && !opts.dry) {
    const { VertexExecutor } = await import('../../compute/vertex.ts');
    const path = await import('node:path');
    const pipeline = opts.pipeline
      ? path.relative(repo.root, path.resolve(io.cwd, opts.pipeline)).split(path.sep).join('/')
      : undefined;
    executor = new VertexExecutor(repo, computePlan, { pipeline });
  }
  let remote;
  if (opts.pull) {
    const { defaultRemote } = await import('../../store/remote-config.ts');
    remote = await defaultRemote(repo);
    if (!remote) {
      throw new UsageError(
        '--pull: no default remote configured. Add `remote: <name>` and `remotes: {<name>: {url: ...}}` to .lockstep/config.yaml, or set LOCKSTEP_REMOTE.',
      );
    }
  }
  let pinnedInputs;
  if (opts.pinInputs !== undefined) {
    if (!opts.pinInputs)
      throw new UsageError('--pin-inputs: empty path "". Pass the lockfile whose inputs to replay.');
    const fs = await import('node:fs');
    const { parseLockfile } = await import('../../lockfile.ts');
    let text: string;
    try {
      text = fs.readFileSync(opts.pinInputs, 'utf8');
    } catch (err) {
      throw new UsageError(
        `--pin-inputs: cannot read "${opts.pinInputs}" (${(err as NodeJS.ErrnoException).code}). Pass a lockfile path.`,
      );
    }
    const pinned = parseLockfile(text, opts.pinInputs);
    pinnedInputs = Object.fromEntries(
      Object.entries(pinned.stages).flatMap(([name, e]) => (e.inputs ? [[name, e.inputs]] : [])),
    );
  }
  // Ctrl-C: let running stages see the abort and stop starting new ones, so the lockfile keeps
  // every completed stage; a second Ctrl-C falls back to Node's default (exit at once).
  const controller = new AbortController();
  const onSigint = () => {
    io.err('interrupted: finishing running stages (Ctrl-C again to exit at once)');
    controller.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSigint);
  // A cancelled workflow sends SIGTERM: the same path, so submitted jobs are cancelled too.
  process.once('SIGTERM', onSigint);
  let report: RunReport;
  try {
    report = await reproduce(repo, stages, {
      params,
      signal: controller.signal,
      targets,
      force: opts.force,
      dry: opts.dry,
      jobs,
      out: io,
      remote,
      pinnedInputs,
      executor,
    });
  } finally {
    process.removeListener('SIGINT', onSigint);
    process.removeListener('SIGTERM', onSigint);
  }
  // A whole pipeline run becomes a Vertex AI Experiments run when vertex.experiment is set.
  if (!opts.dry && targets.length === 0) await logPipelineRun(repo, report, io);
  return report;
}

/** Logs a finished run to Vertex AI Experiments; a refusal is one line on stderr, not a failure. */
async function logPipelineRun(repo: Repo, report: RunReport, io: Output): Promise<void> {
  const { readConfig } = await import('../../config.ts');
  if (!readConfig(repo).vertex?.experiment) return;
  const { readFile } = await import('node:fs/promises');
  const { logExperimentRun, commitRunName, trainDirOf } = await import('../../experiments/vertex-record.ts');
  const { simpleGit } = await import('simple-git');
  const head = (
    await simpleGit(repo.root)
      .raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'])
      .catch(() => '')
  ).trim();
  try {
    await logExperimentRun(
      repo,
      {
        run: head ? commitRunName(head) : 'workspace',
        paramsText: await readFile(repo.paramsPath, 'utf8').catch(() => ''),
        lockText: await readFile(repo.lockfilePath, 'utf8').catch(() => ''),
        trainDir: trainDirOf(repo.root),
        failed: report.failures.length > 0,
      },
      { out: io },
    );
  } catch (err) {
    io.err((err as Error).message);
  }
}

export function register(program: Command, io: CliIO): void {
  program
    .command('repro')
    .description(
      'reproduce the pipeline: run the stages whose code, deps or params changed, restore the rest',
    )
    .argument('[stage...]', 'stages to reproduce (with their upstream stages); default all')
    .option('--dry', 'print the plan with a reason per stage, run nothing')
    .option('-f, --force', 're-run the selected stages even if up to date')
    .option('--json', 'print the plan or the run report as JSON')
    .option('--pipeline <module>', 'module exporting pipeline(params) (default stages/pipeline.ts)')
    .option('-j, --jobs <n>', 'stages run at the same time (default min(4, CPUs))')
    .option(
      '--pull',
      'restore locked outs missing from the cache from the default remote instead of re-running',
    )
    .option(
      '--pin-inputs <lockfile>',
      "resolve stage inputs (a gate's baseline) to the values recorded in <lockfile> (verify uses it)",
    )
    .option(
      '--compute <backend>',
      'where every stage computes this run: local or vertex (default: compute: in .lockstep/config.yaml)',
    )
    .action(async (targets: string[], opts: ReproCliOptions) => {
      const { findRepo } = await import('../../repo.ts');
      const { formatPlan, planToJson } = await import('../../pipeline/plan.ts');
      const { assertRunSucceeded, formatReport, reportToJson } = await import('../../pipeline/run.ts');
      const repo = findRepo(io.cwd);
      const report = await runRepro(repo, targets, opts, io);
      if (opts.dry) {
        if (opts.json) io.out(JSON.stringify(planToJson(report.plan), null, 2));
        else for (const line of formatPlan(report.plan)) io.out(line);
        return;
      }
      if (opts.json) io.out(JSON.stringify(reportToJson(report), null, 2));
      else {
        for (const line of formatReport(report)) io.out(line);
        const { formatComputeSummary } = await import('../../compute/summary.ts');
        for (const line of formatComputeSummary(report)) io.out(line);
      }
      assertRunSucceeded(report);
    });
}
