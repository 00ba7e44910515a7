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
  /** `i/N`: compute only shard i of N of the one target stage and write it to the default remote. */
  shard?: string;
  /** `N`: compute sharding stages by merging N shards from the default remote. */
  mergeShards?: string;
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
  const { defaultPipelinePath } = await import('../pipeline-module.ts');
  const { reproduce } = await import('../../pipeline/run.ts');
  const { UsageError } = await import('../../errors.ts');
  const jobs = opts.jobs === undefined ? undefined : Number(opts.jobs);
  if (jobs !== undefined && (!Number.isInteger(jobs) || jobs < 1)) {
    throw new UsageError(`--jobs: expected a positive integer "${opts.jobs}". Pass e.g. --jobs 2.`);
  }
  const params = loadParams(repo);
  const factory = await loadPipeline({
    named: opts.pipeline,
    cwd: io.cwd,
    fallback: defaultPipelinePath(repo),
  });
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
  if (opts.shard !== undefined || opts.mergeShards !== undefined) {
    const m = await import('../../compute/shard-matrix.ts');
    const { defaultRemote } = await import('../../store/remote-config.ts');
    const flag = opts.shard !== undefined ? '--shard' : '--merge-shards';
    if (opts.shard !== undefined && opts.mergeShards !== undefined)
      throw new UsageError(
        '--shard: cannot be combined with --merge-shards "". Run the shards, then the merge.',
      );
    const shardRemote = await defaultRemote(repo);
    if (!shardRemote) {
      throw new UsageError(
        `${flag}: no default remote configured "". Shards meet on a remote: add \`remote: <name>\` and \`remotes: {<name>: {url: ...}}\` to .lockstep/config.yaml, or set LOCKSTEP_REMOTE.`,
      );
    }
    if (opts.shard !== undefined) {
      const shard = m.parseShardFlag(opts.shard);
      return runOneShard(repo, stages, params, targets, shard, shardRemote, opts, io);
    }
    executor = new m.ShardMergeExecutor(
      repo,
      shardRemote,
      m.parseShardCount(opts.mergeShards!),
      stages,
      executor,
    );
  }
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

/**
 * `repro <stage> --shard i/N`: reproduces the stage's upstream as usual, then computes shard i
 * of N of the stage against the deps as they are now and writes it to the remote. Nothing of the
 * stage is locked here; `repro --merge-shards N` does that.
 */
async function runOneShard(
  repo: Repo,
  stages: import('../../types.ts').StageDef[],
  params: Record<string, unknown>,
  targets: string[],
  shard: import('../../types.ts').Shard,
  remote: import('../../store/remote.ts').Remote,
  opts: ReproCliOptions,
  io: Output & { cwd: string },
): Promise<RunReport> {
  const { UsageError } = await import('../../errors.ts');
  const { reproduce, assertRunSucceeded } = await import('../../pipeline/run.ts');
  const { buildGraph, selectStages } = await import('../../pipeline/graph.ts');
  const { planRun } = await import('../../pipeline/plan.ts');
  const { withRepoLock } = await import('../../lock.ts');
  const { runShardToRemote } = await import('../../compute/shard-matrix.ts');
  const path = await import('node:path');
  const stage = targets.length === 1 ? stages.find((s) => s.name === targets[0]) : undefined;
  if (!stage || opts.dry) {
    throw new UsageError(
      `--shard: expects exactly one stage that shards and no --dry "${targets.join(' ')}". Run e.g. lockstep repro featurize --shard 1/4.`,
    );
  }
  if (!stage.shards) throw new UsageError(`--shard: stage "${stage.name}" does not shard. Shard featurize.`);
  const upstream = selectStages(buildGraph(stages), [stage.name])
    .map((s) => s.name)
    .filter((n) => n !== stage.name);
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const report = await reproduce(repo, stages, {
      params,
      signal: controller.signal,
      // No upstream: a plan of the stage alone, nothing run.
      targets: upstream.length ? upstream : [stage.name],
      force: opts.force,
      out: io,
      dry: upstream.length === 0,
    });
    assertRunSucceeded(report);
    await withRepoLock(
      repo,
      'repro',
      async () => {
        const plan = await planRun(repo, stages, { params, targets: [stage.name], force: true });
        const check = plan.stages.find((s) => s.name === stage.name)!;
        const ref = await runShardToRemote(repo, stage, check, shard, remote, {
          root: repo.root,
          params,
          out: io,
          abs: (rel) => path.join(repo.root, rel),
          signal: controller.signal,
          inputs: check.inputs,
        });
        io.err(
          `${stage.name}: shard ${shard.index + 1}/${shard.count} of run ${check.key!.slice(0, 12)} written to ${remote.url} (${ref.hash.slice(0, 12)})`,
        );
      },
      { out: io },
    );
    return report;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/** Logs a finished run to Vertex AI Experiments; a refusal is one line on stderr, not a failure. */
async function logPipelineRun(repo: Repo, report: RunReport, io: Output): Promise<void> {
  const { readConfig } = await import('../../config.ts');
  if (!readConfig(repo).vertex?.experiment) return;
  const { readFile } = await import('node:fs/promises');
  const { logExperimentRun, commitRunName, trainDirOf } = await import('../../experiments/vertex-record.ts');
  const { gitClient } = await import('../../git-client.ts');
  const head = (
    await gitClient(repo.root)
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
    .option(
      '--shard <i/N>',
      'compute only shard i of N of the one stage given (featurize) and write it to the default remote',
    )
    .option(
      '--merge-shards <N>',
      'compute sharding stages by merging the N shards on the default remote (after every --shard i/N)',
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
