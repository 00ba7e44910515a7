/**
 * `lockstep job run --remote <url> --key <run key>`: the command of a Vertex AI job's replicas
 * (lib/compute/worker.ts). Not meant for people; `lockstep repro` submits it.
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
          signal: controller.signal,
        });
      } finally {
        process.removeListener('SIGTERM', onTerm);
      }
    });
}
