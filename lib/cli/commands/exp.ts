/**
 * `lockstep exp run | show | apply | remove`: DVC-style experiments kept as git refs
 * (`refs/exps/<name>`), run without touching the workspace, reusing the cache upstream.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';
import { parsePositiveInt, wrap } from '../../store/format.ts';
import { registerQueue } from './exp-queue.ts';

function fmt(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(4);
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function register(program: Command, io: CliIO): void {
  const exp = program.command('exp').description('experiments: run variants without changing the workspace');

  exp
    .command('run')
    .description('run the pipeline with params set by -S key=value, keeping the result as an experiment')
    .option(
      '-S, --set-param <key=value>',
      'params override (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('-n, --name <name>', 'experiment name (default: derived from the base commit and overrides)')
    .option('--pipeline <module>', 'pipeline module (default stages/pipeline.ts)')
    .option('--queue', 'record it to run later (exp queue start); comma lists in -S queue the grid product')
    .option(
      '--compute <backend>',
      'where every stage computes: local or vertex (default: compute: in .lockstep/config.yaml)',
    )
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        setParam: string[];
        name?: string;
        pipeline?: string;
        queue?: boolean;
        compute?: string;
        json?: boolean;
      }) => {
        const { runExperiment, parseOverrides } = await import('../../experiments/run.ts');
        const { parseComputeOverride } = await import('../../experiments/workspace.ts');
        const repo = findRepo(io.cwd);
        if (opts.queue) {
          const { queueExperiments } = await import('../../experiments/queue-add.ts');
          const queued = await queueExperiments(repo, opts.setParam, {
            name: opts.name,
            pipeline: opts.pipeline,
            compute: opts.compute,
          });
          if (opts.json) return io.out(JSON.stringify({ queued }, null, 2));
          io.out(`queued ${queued.length} experiment(s): ${queued.map((e) => e.name).join(', ')}`);
          return;
        }
        const res = await runExperiment(repo, {
          overrides: parseOverrides(opts.setParam),
          name: opts.name,
          pipeline: opts.pipeline,
          compute: parseComputeOverride(opts.compute),
          out: opts.json ? undefined : io,
        });
        if (opts.json) return io.out(JSON.stringify(res, null, 2));
        const ran = Object.entries(res.stages)
          .filter(([, s]) => s === 'ran')
          .map(([n]) => n);
        io.out(
          `experiment ${res.name} (${res.status}) from ${res.baseline.slice(0, 8)}: ran ${ran.join(', ') || 'nothing (all restored from the cache)'}`,
        );
        for (const k of ['accuracy', 'f1_macro', 'mcc'])
          if (res.metrics[k] !== undefined) io.out(`  ${k.padEnd(10)} ${res.metrics[k].toFixed(4)}`);
      },
    );

  exp
    .command('show')
    .description('table of HEAD, branches and experiments with params and metrics')
    .option('--sort <metric>', 'sort by a metric (descending)')
    .option('--asc', 'sort ascending')
    .option('--metrics <list>', 'comma-separated metric columns')
    .option('--params <list>', 'comma-separated param columns (default: those that differ)')
    .option('--md', 'Markdown table')
    .option('-A, --all-commits', 'experiments of every base commit (default: those started from HEAD)')
    .option(
      '--rev <commit>',
      'experiments started from this commit (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--json', 'print JSON')
    .action(
      async (opts: {
        sort?: string;
        asc?: boolean;
        metrics?: string;
        params?: string;
        md?: boolean;
        allCommits?: boolean;
        rev: string[];
        json?: boolean;
      }) => {
        const [{ collectRows, shapeTable }, { readOrigins }, { resolveRev }, { renderTable }, path] =
          await Promise.all([
            import('../../experiments/show.ts'),
            import('../../experiments/origins.ts'),
            import('../../git.ts'),
            import('../../table.ts'),
            import('node:path'),
          ]);
        const repo = findRepo(io.cwd);
        const revs = opts.rev.length
          ? await Promise.all(opts.rev.map((r) => resolveRev(repo.root, r)))
          : undefined;
        const rows = await collectRows(repo.root, {
          allCommits: opts.allCommits,
          revs,
          origins: readOrigins(repo),
          cacheFile: path.join(repo.stateDir, 'exp-show-cache.json'),
        });
        const table = shapeTable(rows, {
          sort: opts.sort,
          ascending: opts.asc,
          metrics: opts.metrics?.split(',').filter(Boolean),
          params: opts.params?.split(',').filter(Boolean),
        });
        if (opts.json) return io.out(JSON.stringify(table, null, 2));
        const headers = ['name', 'kind', 'commit', 'status', 'origin', ...table.params, ...table.metrics];
        const cells = table.rows.map((r) => [
          r.name,
          r.kind,
          r.commit.slice(0, 8),
          r.status,
          r.origin ?? '',
          ...table.params.map((p) => fmt(r.params[p])),
          ...table.metrics.map((m) => fmt(r.metrics[m])),
        ]);
        const right = headers.map((_, i) => i).filter((i) => i >= 5);
        io.out(renderTable(headers, cells, { markdown: opts.md, right }));
      },
    );

  exp
    .command('apply <name>')
    .description("write an experiment's params.yaml and lockfile into the workspace and restore its outputs")
    .option('-f, --force', 'overwrite workspace outputs whose changes are recorded nowhere')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean; force?: boolean }) => {
      const { applyExperiment } = await import('../../experiments/apply.ts');
      const res = await applyExperiment(findRepo(io.cwd), name, { out: io, force: opts.force });
      if (opts.json) return io.out(JSON.stringify(res, null, 2));
      const wrote = res.written.length
        ? `wrote ${res.written.join(', ')}`
        : res.lockfile
          ? 'params and lockfile already match'
          : 'params already match';
      const unpinned = res.lockfile
        ? ''
        : `; its commit ${res.commit.slice(0, 8)} has no artifacts.lock.yaml (the run did not finish), so no outputs are pinned: re-run it (lockstep exp run) to get them`;
      const keys = res.params.length ? ` (params: ${res.params.join(', ')})` : '';
      io.out(
        `applied ${name}: ${wrote}${keys}; restored ${res.restored.length} outputs${res.restored.length ? ` (${res.restored.join(', ')})` : ''}${unpinned}`,
      );
    });

  for (const verb of ['push', 'pull'] as const) {
    exp
      .command(`${verb} <git-remote> [names...]`)
      .description(
        verb === 'push'
          ? "push experiments' refs to a git remote and their artifacts to the artifact remote (default: all)"
          : "pull experiments' refs from a git remote and their artifacts from the artifact remote (default: all)",
      )
      .option('--remote <url>', 'artifact remote (default: the configured remote)')
      .option(
        '-f, --force',
        "replace experiments of the same name: local ones (pull), or the remote's from another clone (push)",
      )
      .option('--json', 'print JSON')
      .action(
        async (
          gitRemote: string,
          names: string[],
          opts: { remote?: string; force?: boolean; json?: boolean },
        ) => {
          const share = await import('../../experiments/share.ts');
          const repo = findRepo(io.cwd);
          const { withRepoLock } = await import('../../lock.ts');
          const run = verb === 'push' ? share.pushExperiments : share.pullExperiments;
          // The lock keeps gc from collecting what a pull downloads for a ref it has not seen yet,
          // or what a push is about to upload.
          const res = await withRepoLock(
            repo,
            `exp ${verb}`,
            () => run(repo, gitRemote, names, { remote: opts.remote, force: opts.force, out: io }),
            { out: io },
          );
          if (opts.json) return io.out(JSON.stringify(res, null, 2));
          const dir = verb === 'push' ? 'to' : 'from';
          io.out(
            `${verb === 'push' ? 'pushed' : 'pulled'} ${res.experiments.length} experiment(s) ${dir} ${gitRemote}: ${res.experiments.join(', ')}; ${res.transferred} object(s) ${verb === 'push' ? 'uploaded to' : 'downloaded from'} ${res.remote}`,
          );
        },
      );
  }

  registerQueue(exp, io);

  exp
    .command('comment')
    .description(
      'experiments requested by a PR comment: text from LOCKSTEP_COMMENT_BODY, author from LOCKSTEP_COMMENT_AUTHOR (workflows)',
    )
    .option('--plan', "check the author's permission, parse the request, print the experiments as JSON")
    .option('--run <index>', 'run experiment <index> of the request', wrap(parsePositiveInt('--run')))
    .option('--queue', 'queue every experiment of the request (then: lockstep exp queue start)')
    .option('--compute <backend>', 'with --run or --queue: where every stage computes, local or vertex')
    .option(
      '--report',
      "print the Experiments section (HEAD's experiments, best first) and write it into the PR's sticky comment (LOCKSTEP_PR_NUMBER)",
    )
    .option('--sort <metric>', 'metric the --report section is sorted by, best first', 'f1_macro')
    .action(
      async (opts: {
        plan?: boolean;
        run?: number;
        queue?: boolean;
        report?: boolean;
        sort: string;
        compute?: string;
      }) => {
        const { UsageError } = await import('../../errors.ts');
        if ([opts.plan, opts.run !== undefined, opts.queue, opts.report].filter(Boolean).length !== 1)
          throw new UsageError('exp comment: pass one of --plan, --run <index>, --queue or --report.');
        if (opts.compute !== undefined && (opts.plan || opts.report))
          throw new UsageError(
            `--compute: only with --run or --queue "${opts.compute}". Drop it, or pass it to exp comment --run / --queue.`,
          );
        if (opts.report) {
          const { experimentsForHead, publishExperimentsSection, renderExperimentsSection } =
            await import('../../report/experiments.ts');
          const repo = findRepo(io.cwd);
          const experiments = await experimentsForHead(repo);
          io.out(renderExperimentsSection(experiments, opts.sort));
          const raw = process.env.LOCKSTEP_PR_NUMBER ?? '';
          if (raw === '') return;
          const issue = Number(raw);
          if (!Number.isInteger(issue) || issue <= 0)
            throw new UsageError(`LOCKSTEP_PR_NUMBER: not a pull request number "${raw}". Set e.g. 42.`);
          const { githubFromEnv } = await import('../github.ts');
          const { issueCommentsClient } = await import('../../report/sticky.ts');
          const gh = (await githubFromEnv(repo.root, true))!;
          const res = await publishExperimentsSection(
            issueCommentsClient(gh.client),
            { ...gh.slug, issueNumber: issue },
            experiments,
            opts.sort,
          );
          io.err(`${res.action} the Experiments section of the sticky comment ${res.url ?? res.id}`);
          return;
        }
        const { parseExpComment } = await import('../exp-comment.ts');
        const comment = await import('../../experiments/comment.ts');
        const repo = findRepo(io.cwd);
        const body = process.env.LOCKSTEP_COMMENT_BODY ?? '';
        const { parseComputeOverride } = await import('../../experiments/workspace.ts');
        const compute = parseComputeOverride(opts.compute);
        if (opts.queue) {
          const parsed = await parseExpComment(body);
          if (!parsed.ok) throw new UsageError(`LOCKSTEP_COMMENT_BODY: ${parsed.reason}. Fix the comment.`);
          const { queueExperiments } = await import('../../experiments/queue-add.ts');
          const queued = await queueExperiments(repo, parsed.setParam, { name: parsed.name, compute });
          return io.out(JSON.stringify({ queued: queued.map(({ paramsText: _, ...e }) => e) }, null, 2));
        }
        if (opts.run !== undefined) {
          const parsed = await parseExpComment(body);
          if (!parsed.ok) throw new UsageError(`LOCKSTEP_COMMENT_BODY: ${parsed.reason}. Fix the comment.`);
          const planned = await comment.planExperiments(repo, parsed.setParam, parsed.name);
          const e = planned[opts.run];
          if (!e) throw new UsageError(`--run ${opts.run}: the request has ${planned.length} experiment(s).`);
          const { runExperiment } = await import('../../experiments/run.ts');
          const res = await runExperiment(repo, { overrides: e.overrides, name: e.name, compute, out: io });
          return io.out(JSON.stringify(res, null, 2));
        }
        const { githubFromEnv } = await import('../github.ts');
        const gh = (await githubFromEnv(repo.root, true))!;
        const author = process.env.LOCKSTEP_COMMENT_AUTHOR ?? '';
        const issue = Number(process.env.LOCKSTEP_PR_NUMBER ?? '');
        const refuse = async (reason: string) => {
          if (Number.isInteger(issue) && issue > 0)
            await comment.replyOnPullRequest(
              gh.client,
              gh.slug,
              issue,
              `@${author}: ${reason}; the command was ignored.`,
            );
          io.out(JSON.stringify({ allowed: false, reason, experiments: [] }, null, 2));
        };
        const check = author ? await comment.checkCommenter(gh.client, gh.slug, author) : undefined;
        if (!check?.allowed)
          return refuse(
            `\`/lockstep exp run\` needs write access to this repository (yours: ${check?.permission ?? 'unknown'})`,
          );
        const parsed = await parseExpComment(body);
        if (!parsed.ok) return refuse(`could not read the command (${parsed.reason})`);
        let experiments;
        try {
          experiments = await comment.planExperiments(repo, parsed.setParam, parsed.name);
        } catch (err) {
          // The runner has no git: the workflow fails, the commenter is not told it was refused.
          const { isGitNotFound } = await import('../../errors.ts');
          if (isGitNotFound(err)) throw err;
          return refuse(`could not plan the experiments (${(err as Error).message})`);
        }
        io.out(JSON.stringify({ allowed: true, experiments }, null, 2));
      },
    );

  exp
    .command('remove [names...]')
    .description('delete experiments')
    .option('--all', 'delete every experiment')
    .option('--json', 'print JSON')
    .action(async (names: string[], opts: { all?: boolean; json?: boolean }) => {
      const { removeExperiments, listExperiments } = await import('../../experiments/store.ts');
      const { UsageError } = await import('../../errors.ts');
      const repo = findRepo(io.cwd);
      const targets = opts.all ? (await listExperiments(repo.root)).map((e) => e.name) : names;
      if (targets.length === 0)
        throw new UsageError('exp remove: name at least one experiment, or pass --all.');
      const removed = await removeExperiments(repo.root, targets);
      if (opts.json) return io.out(JSON.stringify({ removed }, null, 2));
      io.out(`removed ${removed.length} experiment(s): ${removed.join(', ')}`);
    });
}
