/**
 * `lockstep tune`: tune the `tune.space` params on validation speakers; each trial is kept as an
 * experiment; when the best trial beats the current params, params.yaml is updated (comments
 * kept) and the diff shown.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';

interface TuneCliOptions {
  trials?: string;
  minutes?: string;
  sampler?: 'tpe' | 'random';
  parallel?: string;
  folds?: string;
  features?: string;
  repro?: boolean;
  write?: boolean;
  json?: boolean;
  compute?: string;
}

export function register(program: Command, io: CliIO): void {
  program
    .command('tune')
    .description('tune the tune.space params (TPE or random sampler, median pruning, parallel trials)')
    .option('--trials <n>', 'trial budget (default tune.budget.trials)')
    .option('--minutes <m>', 'time budget (default tune.budget.minutes)')
    .option('--sampler <name>', 'tpe or random (default tune.sampler)')
    .option('--parallel <n>', 'trials at the same time (default tune.parallel)')
    .option('--folds <k>', 'speaker-grouped k-fold cross-validation (default tune.cv_folds)')
    .option('--features <dir>', 'featurized data to tune on (default out/features)')
    .option('--no-repro', 'do not run the pipeline up to featurize first')
    .option('--no-write', 'report only; never change params.yaml')
    .option('--json', 'print the study as JSON')
    .option('--compute <backend>', 'local or vertex: where trials run (default compute.tune.backend)')
    .action(async (opts: TuneCliOptions) => {
      const { loadParams } = await import('../../params.ts');
      const { runStudy } = await import('../../tune/tuner.ts');
      const { spaceProblem } = await import('../../tune/space.ts');
      const { renderStudyMarkdown, objectiveSpec, paramsSpec } = await import('../../tune/report.ts');
      const { writePlot } = await import('../../plots/render.ts');
      const { writeExperiment } = await import('../../experiments/store.ts');
      const { applyOverrides } = await import('../../experiments/run.ts');
      const { logExperimentRun } = await import('../../experiments/vertex-record.ts');
      const { diffParams, renderDiffTable } = await import('../../pipeline/diff.ts');
      const { parseParams } = await import('../../params.ts');
      const { UsageError, LockstepError } = await import('../../errors.ts');
      const { gitClient, unlessGitMissing } = await import('../../git-client.ts');
      // A bad number on the command line is refused before anything runs (a NaN --parallel
      // would start no trial and wait forever; 0 or 2.5 would silently mean something else).
      const whole = (flag: string, raw: string | undefined, min: number, max = Infinity) => {
        if (raw === undefined) return undefined;
        const n = Number(raw);
        if (raw.trim() !== '' && Number.isInteger(n) && n >= min && n <= max) return n;
        throw new UsageError(
          `${flag} "${raw}": not a whole number from ${min}${max < Infinity ? ` to ${max}` : ''}. Pass e.g. ${flag} ${Math.max(min, 2)}.`,
        );
      };
      const cliParallel = whole('--parallel', opts.parallel, 1, 64);
      const cliTrials = whole('--trials', opts.trials, 1);
      const cliFolds = whole('--folds', opts.folds, 0, 20);
      const cliMinutes = opts.minutes === undefined ? undefined : Number(opts.minutes);
      if (cliMinutes !== undefined && !(cliMinutes > 0 && Number.isFinite(cliMinutes)))
        throw new UsageError(
          `--minutes "${opts.minutes}": not a positive number of minutes. Pass e.g. --minutes 30.`,
        );
      const repo = findRepo(io.cwd);
      const params = loadParams(repo);
      const t = params.tune;
      const config = {
        objective: t.objective.metric,
        direction: t.objective.direction,
        trials: cliTrials ?? t.budget.trials,
        minutes: cliMinutes ?? t.budget.minutes,
        sampler: (opts.sampler ?? t.sampler) as 'tpe' | 'random',
        seed: t.seed,
        parallel: cliParallel ?? t.parallel,
        prune: t.pruning.enabled,
        warmup_epochs: t.pruning.warmup_epochs,
        prune_startup_trials: t.pruning.startup_trials,
        cv_folds: cliFolds ?? t.cv_folds,
        space: t.space,
      };
      if (!['tpe', 'random'].includes(config.sampler))
        throw new UsageError(`--sampler "${config.sampler}": use tpe or random.`);
      const problem = spaceProblem(config.space);
      if (problem) throw new UsageError(`params.yaml: ${problem}. Fix tune.space.`);
      const outside = Object.keys(config.space).find((k) => !k.startsWith('train.'));
      if (outside) {
        throw new UsageError(
          `params.yaml: tune.space.${outside}: only train.* params can be tuned. Use lockstep exp run for others.`,
        );
      }
      const paramsText = await readFile(repo.paramsPath, 'utf8');
      // Every value the space can propose must be a valid train param, or the study dies at
      // the first trial that draws one (after training it). Both ends of a range and every
      // choice are checked, so no trial is run for a space params.yaml cannot hold.
      for (const [key, d] of Object.entries(config.space)) {
        const values: [string, unknown][] =
          d.type === 'choice'
            ? d.values.map((v) => ['choice', v])
            : [
                ['low', d.low],
                ['high', d.high],
              ];
        for (const [what, v] of values) {
          try {
            applyOverrides(paramsText, { [key]: v });
          } catch (err) {
            if (!(err instanceof LockstepError)) throw err;
            const reason = err.message
              .replace(/^.*?:\d+: /, '')
              .replace(/ Fix the value\.$/, '')
              .replace(/\.$/, '');
            throw new UsageError(
              `params.yaml: tune.space.${key}: ${what} "${String(v)}" is not valid (${reason}). Fix tune.space.`,
            );
          }
        }
      }
      // Where trials run is checked (machine type, image, remote) before featurize or any job.
      const { resolveTuneCompute } = await import('../../compute/resolve.ts');
      const where = resolveTuneCompute(repo, opts.compute);
      // The commit trials are recorded on (none before the first commit), read before featurize
      // runs: without git the study stops here, not after featurizing.
      const base = (
        await gitClient(repo.root)
          .raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'])
          .catch(unlessGitMissing(''))
      ).trim();
      if (opts.repro !== false) {
        const { runRepro } = await import('./repro.ts');
        const { assertRunSucceeded } = await import('../../pipeline/run.ts');
        assertRunSucceeded(await runRepro(repo, ['featurize'], {}, io));
      }
      const featuresDir = path.resolve(repo.root, opts.features ?? 'out/features');
      // The study's id names its trials' experiments (tune-<study>-NNN) and, on Vertex AI, its
      // jobs' keys. Two studies started in the same second on one repo (two tunes, two workflow
      // runs) would otherwise share them: each overwriting the other's experiments, each reading
      // the other's epochs and outcomes.
      const study = `${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}-${randomBytes(4).toString('hex')}`;
      let executor;
      if (where.vertex) {
        const { vertexTrialExecutor } = await import('../../compute/trials.ts');
        executor = vertexTrialExecutor({
          repo,
          vertex: where.vertex,
          compute: where.compute,
          study: `tune-${study}`,
          featuresDir,
          out: opts.json ? undefined : io,
        });
      }
      // Ctrl-C (or a cancelled workflow's SIGTERM) stops the study: running trials stop (their
      // jobs are cancelled), params.yaml stays as it is, exit 130. A second Ctrl-C exits at once.
      const controller = new AbortController();
      const onSignal = () => {
        io.err('interrupted: stopping running trials (Ctrl-C again to exit at once)');
        controller.abort(new Error('interrupted'));
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const result = await runStudy({
        featuresDir,
        train: params.train,
        config,
        signal: controller.signal,
        ...(executor ? { executor, maxParallel: config.parallel } : {}),
        out: opts.json ? undefined : io,
        onTrial: async (trial) => {
          if (!base) return; // no commit to hang experiments on
          const name = `tune-${study}-${String(trial.number).padStart(3, '0')}`;
          const trialParams = applyOverrides(paramsText, trial.params);
          await logExperimentRun(
            repo,
            { run: name, paramsText: trialParams, metrics: trial.metrics, failed: Boolean(trial.error) },
            { out: opts.json ? undefined : io },
          ).catch((err: Error) => io.err(err.message));
          await writeExperiment(
            repo.root,
            base,
            { 'params.yaml': trialParams },
            {
              name,
              kind: 'trial',
              overrides: trial.params,
              metrics: trial.metrics,
              status: trial.error ? 'failed' : trial.pruned ? 'pruned' : 'ok',
              created: new Date().toISOString(),
              tune: study,
            },
          );
        },
      }).finally(() => {
        process.removeListener('SIGINT', onSignal);
        process.removeListener('SIGTERM', onSignal);
      });
      const outDir = path.join(repo.root, 'out', 'tune');
      await mkdir(outDir, { recursive: true });
      const markdown = renderStudyMarkdown(result, config);
      await writeFile(path.join(outDir, 'report.md'), markdown);
      await writeFile(
        path.join(outDir, 'report.json'),
        JSON.stringify({ study, config, ...result }, null, 2) + '\n',
      );
      await writePlot(path.join(outDir, 'plots'), 'objective', objectiveSpec(result, config));
      await writePlot(path.join(outDir, 'plots'), 'params', paramsSpec(result, config));
      let diff = '';
      // params.yaml edited while the study ran (by hand, or by another tune that finished
      // first) is not overwritten with this study's params applied to the old text.
      const changed = result.improved && (await readFile(repo.paramsPath, 'utf8')) !== paramsText;
      if (result.improved && opts.write !== false && !changed) {
        const next = applyOverrides(paramsText, result.best.params);
        diff = renderDiffTable(diffParams(parseParams(paramsText), parseParams(next)), {
          labels: ['current', `trial ${result.best.number}`],
          keyHeader: 'param',
        });
        const { writeFileAtomic } = await import('../../atomic.ts');
        await writeFileAtomic(repo.paramsPath, next, { tmpDir: repo.tmpDir });
      }
      if (opts.json) {
        io.out(
          JSON.stringify(
            {
              study,
              config,
              ...result,
              paramsUpdated: Boolean(diff),
              ...(changed ? { paramsChanged: true } : {}),
            },
            null,
            2,
          ),
        );
      } else {
        io.out(markdown);
        if (diff) io.out(`params.yaml updated with trial ${result.best.number}:\n${diff}`);
        else if (result.improved && opts.write !== false)
          io.out(
            `params.yaml changed while tuning: left as it is. Trial ${result.best.number} was better than the params the study started from: ${JSON.stringify(result.best.params)}.`,
          );
        else if (result.improved) io.out('--no-write: params.yaml left unchanged.');
        io.out(`report: ${path.relative(io.cwd, outDir)}/report.md, plots/objective.*, plots/params.*`);
      }
      if (result.trials.every((tr) => tr.error)) {
        throw new LockstepError(
          `tune: every trial failed (${result.trials[0]?.error}). Fix the training setup.`,
        );
      }
    });
}
