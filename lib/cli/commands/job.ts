/**
 * `lockstep job run --remote <url> --key <run key>`: the command of a Vertex AI job's replicas
 * (lib/compute/worker.ts); `lockstep job trial --remote <url> --key <trial key>`: one tuning
 * trial (lib/compute/trial-job.ts). Not meant for people; `lockstep repro` and `lockstep tune`
 * submit them.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

export function register(program: Command, io: CliIO): void {
  const job = program.command('job').description('run inside a Vertex AI job (submitted by lockstep repro)');
  job
    .command('run')
    .description("compute one stage (or this replica's shard) of the job spec at <remote>/jobs/<key>/")
    .requiredOption('--remote <url>', 'the remote holding the job spec, inputs and outputs')
    .requiredOption('--key <key>', 'run key of the stage execution')
    .action(async (opts: { remote: string; key: string }) => {
      const { runJob } = await import('../../compute/worker.ts');
      const { repoAt } = await import('../../repo.ts');
      const { defaultPipelinePath } = await import('../pipeline-module.ts');
      const controller = new AbortController();
      // Vertex AI stops a cancelled job's containers with SIGTERM.
      const onTerm = () => controller.abort(new Error('cancelled'));
      process.once('SIGTERM', onTerm);
      try {
        await runJob({
          remote: opts.remote,
          key: opts.key,
          out: io,
          imageRoot: io.cwd,
          defaultPipeline: defaultPipelinePath(repoAt(io.cwd)),
          signal: controller.signal,
        });
      } finally {
        process.removeListener('SIGTERM', onTerm);
      }
    });
  job
    .command('trial')
    .description('run one tuning trial of the spec at <remote>/trials/<key>/ (submitted by lockstep tune)')
    .requiredOption('--remote <url>', 'the remote holding the trial spec and the featurized data')
    .requiredOption('--key <key>', 'trial key')
    .action(async (opts: { remote: string; key: string }) => {
      const { runTrialJob } = await import('../../compute/trial-job.ts');
      // A cancelled job's container gets SIGTERM: the trial just stops (its job is cancelled).
      await runTrialJob({ remote: opts.remote, key: opts.key, out: io, imageRoot: io.cwd });
    });
}
