/** `lockstep verify <ref>`: reproduce a commit's model in a temporary worktree and compare hashes. */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';
import { LockstepError } from '../../errors.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('verify <ref>')
    .description('reproduce the model of <ref> from its commit in a temporary worktree and compare hashes')
    .option('--pipeline <module>', 'pipeline module to run in the worktree (default: stages/pipeline.ts)')
    .option('--keep', 'keep the worktree for inspection')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { pipeline?: string; keep?: boolean; json?: boolean }) => {
      const { verifyRef } = await import('../../registry/verify.ts');
      const repo = findRepo(io.cwd);
      const res = await verifyRef(repo, ref, {
        out: opts.json ? undefined : io,
        keep: opts.keep,
        reproArgs: opts.pipeline ? ['--pipeline', opts.pipeline] : [],
      });
      if (opts.json) io.out(JSON.stringify(res, null, 2));
      else {
        for (const o of res.outputs) {
          io.out(
            `${o.match ? 'same' : 'DIFF'}  ${o.stage.padEnd(10)} ${o.path.padEnd(28)} ${o.expected.slice(0, 12)} ${o.match ? '' : '→ ' + (o.actual?.slice(0, 12) ?? 'missing')}`,
          );
        }
        io.out(
          res.reproducible
            ? `reproducible: every output of ${res.commit.slice(0, 8)} matched bit for bit (${res.seconds.toFixed(1)} s)`
            : `not reproducible: ${res.outputs.filter((o) => !o.match).length} output(s) differ`,
        );
      }
      if (!res.reproducible) {
        throw new LockstepError(
          `verify ${ref}: ${res.outputs
            .filter((o) => !o.match)
            .map((o) => o.path)
            .join(', ')} did not reproduce. Check the stage for unseeded randomness or a different backend.`,
        );
      }
    });
}
