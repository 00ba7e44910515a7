/**
 * `lockstep canary reconcile --env <env>`: one pass of the canary controller — compare the model
 * the environment pins with what the endpoint serves, judge the current step on the prediction
 * logs, then advance, hold or roll back, and say why. Exit 1 when the candidate was rolled back.
 * The logs are the local `.lockstep/logs/<env>`, or the gs:// prefix the policy's `logs:` names
 * (where servers elsewhere, e.g. Vertex AI containers, ship theirs).
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

export function register(program: Command, io: CliIO): void {
  const canary = program.command('canary').description('progressive delivery of the pinned model');
  canary
    .command('reconcile')
    .description('advance, hold or roll back the canary of the pinned model (idempotent)')
    .option('-e, --env <env>', 'environment', 'dev')
    .option('--ref <rev>', 'read the pinned model from the lockfile at this revision (default: working tree)')
    .option('--dry', 'print the plan without changing the endpoint')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { env: string; ref?: string; dry?: boolean; json?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { openEndpoint } = await import('../../endpoints/open.ts');
      const { readDesiredModel } = await import('../../canary/desired.ts');
      const { reconcileCanary } = await import('../../canary/reconcile.ts');
      const { predictionLogDir } = await import('../../serving/logs.ts');
      const { readLogs } = await import('../../monitoring/logs.ts');
      const { RefusedError } = await import('../../errors.ts');
      const repo = findRepo(io.cwd);
      const { policy, endpoint } = await openEndpoint(repo, opts.env, { out: io, log: false });
      const desired = await readDesiredModel(repo, { ref: opts.ref });
      // Servers on other machines (Vertex AI containers) ship their logs to a gs:// `logs:`.
      const logSource = policy.logs?.startsWith('gs://')
        ? policy.logs
        : predictionLogDir(repo.root, opts.env);
      const where = `promotion/${opts.env}.yaml: logs`;
      const result = await reconcileCanary({
        endpoint,
        desired,
        steps: policy.canary.steps,
        analysis: policy.canary.analysis,
        readLogs: (since) => readLogs(logSource, { since, where }),
        dry: opts.dry,
      });
      if (opts.json) io.out(JSON.stringify(result, null, 2));
      else {
        io.out(result.reason);
        for (const step of result.plan) io.out(`  ${opts.dry ? 'would ' : ''}${step}`);
      }
      if (result.failed) throw new RefusedError(`canary ${opts.env}: ${result.reason}`);
    });
}
