/**
 * `lockstep endpoint describe --env <env>`: deployed models, traffic split and canary status.
 * `lockstep endpoint configure --env <env> [--dry]`: a Vertex AI endpoint's request-response
 * logging and Model Monitoring job made to match the policy.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

export function register(program: Command, io: CliIO): void {
  const endpoint = program.command('endpoint').description("inspect an environment's serving endpoint");
  endpoint
    .command('describe')
    .description('show deployed models, traffic split and canary status')
    .option('-e, --env <env>', 'environment', 'dev')
    .option('--json', 'print as JSON')
    .action(async (opts: { env: string; json?: boolean }) => {
      const [{ findRepo }, { openEndpoint }] = await Promise.all([
        import('../../repo.ts'),
        import('../../endpoints/open.ts'),
      ]);
      const repo = findRepo(io.cwd);
      const { endpoint: ep } = await openEndpoint(repo, opts.env, { out: io, log: false });
      const d = await ep.describe();
      if (opts.json) {
        io.out(JSON.stringify(d, null, 2));
        return;
      }
      io.out(
        `endpoint ${d.name} (${d.kind}): ${d.deployedModels.length} deployed model${d.deployedModels.length === 1 ? '' : 's'}`,
      );
      for (const m of d.deployedModels) {
        const commit = m.model.commit ? ` commit ${m.model.commit.slice(0, 8)}` : '';
        io.out(
          `  ${m.id.padEnd(4)} ${m.model.hash.slice(0, 12)}  ${String(d.trafficSplit[m.id] ?? 0).padStart(3)}%  deployed ${m.deployedAt}${commit}`,
        );
      }
      if (d.canary) {
        const { describeCanaryStatus } = await import('../../canary/status.ts');
        io.out(`canary: ${describeCanaryStatus(d.canary)}`);
      }
    });
  endpoint
    .command('configure')
    .description(
      "make a Vertex AI endpoint's request logging and Model Monitoring job match promotion/<env>.yaml",
    )
    .option('-e, --env <env>', 'environment', 'dev')
    .option('--dry', 'print the plan without changing anything')
    .option('--json', 'print the result as JSON')
    .action(async (opts: { env: string; dry?: boolean; json?: boolean }) => {
      const { findRepo } = await import('../../repo.ts');
      const { configureVertexEndpoint } = await import('../../endpoints/configure.ts');
      const repo = findRepo(io.cwd);
      const result = await configureVertexEndpoint(repo, opts.env, { dry: opts.dry, out: io });
      if (opts.json) {
        io.out(JSON.stringify(result, null, 2));
        return;
      }
      io.out(`request logging: ${result.requestLogging}`);
      io.out(`monitoring job: ${result.monitoring.action} (${result.monitoring.reason})`);
      if (result.baselineUri) io.out(`skew baseline: ${result.baselineUri}`);
    });
}
