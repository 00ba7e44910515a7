/**
 * `lockstep canary reconcile --env <env>`: one pass of the canary controller — compare the model
 * the environment's branch pins (`--ref` reads another revision) with what the endpoint serves,
 * judge the current step on the prediction logs, then advance, hold or roll back, and say why.
 * Every step, hold, completion and rollback is recorded (`lockstep history`; with a GitHub token
 * also as a GitHub deployment status). After a rollback the branch is made to pin what serves:
 * locally a rollback commit, with a GitHub token a revert pull request. Exit 1 when the
 * candidate was rolled back. The logs are the local `.lockstep/logs/<env>`, or the gs:// prefix
 * the policy's `logs:` names (where servers elsewhere, e.g. Vertex AI containers, ship theirs).
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { whileLocked } from '../locked.ts';

/** What the analysis measured, one line each, for the revert pull request's body. */
function evidenceLines(result: { analysis?: import('../../canary/analysis.ts').Analysis }): string[] {
  const a = result.analysis;
  if (!a) return [];
  const lines = [
    `canary: ${a.canary.requests} requests, error rate ${(a.canary.errorRate * 100).toFixed(1)}%, p99 ${Math.round(a.canary.p99Ms)} ms` +
      (a.stable
        ? `; stable: ${a.stable.requests} requests, error rate ${(a.stable.errorRate * 100).toFixed(1)}%, p99 ${Math.round(a.stable.p99Ms)} ms`
        : ''),
    ...a.failures.map((f) => `failed: ${f}`),
  ];
  for (const t of a.tests)
    lines.push(
      `${t.test} (${t.method}): statistic ${t.statistic.toFixed(2)}, p ${t.pValue.toExponential(2)}, effect ${t.effect.toFixed(3)} (minimum ${t.minEffect})${t.failed ? ': failed' : ''}`,
    );
  return lines;
}

export function register(program: Command, io: CliIO): void {
  const canary = program.command('canary').description('progressive delivery of the pinned model');
  canary
    .command('reconcile')
    .description('advance, hold or roll back the canary of the pinned model (idempotent)')
    .option('-e, --env <env>', 'environment', 'dev')
    .option(
      '--ref <rev>',
      "read the pinned model from the lockfile at this revision (default: the environment's branch)",
    )
    .option('--working-tree', "read the working tree's lockfile instead (a rehearsal before committing)")
    .option('--dry', 'print the plan without changing the endpoint')
    .option('--local', 'after a rollback, commit the revert to the local branch even with a GitHub token')
    .option('--json', 'print the result as JSON')
    .action(
      async (opts: {
        env: string;
        ref?: string;
        workingTree?: boolean;
        dry?: boolean;
        local?: boolean;
        json?: boolean;
      }) =>
        whileLocked(io, 'canary reconcile', opts.dry, async () => {
          const { findRepo } = await import('../../repo.ts');
          const { openEndpoint } = await import('../../endpoints/open.ts');
          const { readDesiredModel } = await import('../../canary/desired.ts');
          const { reconcileCanary } = await import('../../canary/reconcile.ts');
          const { recordCanaryResult } = await import('../../canary/record.ts');
          const { revertBranch, findOpenRevert } = await import('../../canary/revert.ts');
          const { environmentBranch } = await import('../../environment/refs.ts');
          const { predictionLogDir } = await import('../../serving/logs.ts');
          const { readLogs, policyLogSource } = await import('../../monitoring/logs.ts');
          const { githubFromEnv } = await import('../github.ts');
          const { RefusedError } = await import('../../errors.ts');
          const repo = findRepo(io.cwd);
          const { policy, endpoint, image } = await openEndpoint(repo, opts.env, { out: io, log: false });
          const desired = await readDesiredModel(repo, {
            env: opts.env,
            ref: opts.ref,
            workingTree: opts.workingTree,
          });
          // Servers on other machines (Vertex AI containers) ship their logs to a gs:// `logs:`,
          // or the endpoint's request-response logging writes them to BigQuery.
          const remoteLogs = policyLogSource(policy, opts.env);
          const logSource = remoteLogs?.source ?? predictionLogDir(repo.root, opts.env);
          const where = remoteLogs?.where ?? `promotion/${opts.env}.yaml: logs`;
          const github = opts.local ? undefined : await githubFromEnv(repo.root, false);
          // An open revert pull request of the pinned model: hold instead of deploying it again.
          const pending =
            github && !opts.ref && !opts.workingTree
              ? await findOpenRevert(
                  github,
                  opts.env,
                  await environmentBranch(repo.root, opts.env),
                  desired.hash,
                )
              : undefined;
          const result = await reconcileCanary({
            ...(pending ? { revertPending: pending } : {}),
            endpoint,
            desired,
            steps: policy.canary.steps,
            analysis: policy.canary.analysis,
            readLogs: (since) => readLogs(logSource, { since, where, env: opts.env }),
            dry: opts.dry,
          });
          let git: Awaited<ReturnType<typeof revertBranch>> | undefined =
            pending && result.action === 'hold'
              ? { kind: 'pending', pullRequest: { ...pending, created: false } }
              : undefined;
          if (!opts.dry && !git) {
            const after = await endpoint.describe();
            const candidate = after.deployedModels.find((d) => d.model.hash === desired.hash);
            try {
              await recordCanaryResult(repo, result, {
                env: opts.env,
                commit: desired.commit ?? '',
                percent: candidate ? (after.trafficSplit[candidate.id] ?? 0) : 0,
                // A GitHub deployment needs the commit that pinned the model (not a working tree).
                github: desired.commit ? github : undefined,
                image,
              });
            } catch (err) {
              // The endpoint already changed; a missing GitHub status must not hide that.
              io.err(
                `canary ${opts.env}: GitHub deployment status not written (${(err as Error).message.split('\n')[0]}). The local record is in .lockstep/deployments/${opts.env}.jsonl; give the token deployments: write.`,
              );
            }
            // The branch must pin what serves: revert it to the stable model (not for an explicit --ref).
            const stable = after.deployedModels.find((d) => (after.trafficSplit[d.id] ?? 0) === 100);
            if (
              result.failed &&
              !opts.ref &&
              !opts.workingTree &&
              stable &&
              stable.model.hash !== desired.hash
            ) {
              const { EnvironmentMirror } = await import('../../endpoints/vertex-mirror.ts');
              const mirror = await EnvironmentMirror.open(repo, opts.env, { out: io });
              git = await revertBranch(repo, opts.env, {
                failed: desired.hash,
                stable: stable.model.hash,
                reason: result.status?.message ?? result.reason,
                github,
                mirror,
                evidence: evidenceLines(result),
              }).finally(() => mirror?.close());
            }
            // The Model Registry aliases follow the branch: after a merged pull request moved it
            // (the deploy that runs this) and at completion, `<env>` names what the branch pins.
            if (!opts.ref && !opts.workingTree) {
              const { mirrorEnvironment } = await import('../../endpoints/vertex-mirror.ts');
              const moved = await mirrorEnvironment(repo, opts.env, { out: io });
              if (moved?.changed && !opts.json) io.out(`  ${moved.line}`);
            }
          }
          if (opts.json) io.out(JSON.stringify({ ...result, ...(git ? { git } : {}) }, null, 2));
          else {
            io.out(result.reason);
            for (const step of result.plan) io.out(`  ${opts.dry ? 'would ' : ''}${step}`);
            if (git?.kind === 'local')
              io.out(
                `  ${git.plan.branch} now pins ${git.plan.to.model.slice(0, 12)} again: ${git.commit.slice(0, 8)}`,
              );
            if (git?.kind === 'pending')
              io.out(`  revert pull request #${git.pullRequest.number} is open: ${git.pullRequest.url}`);
            if (git?.kind === 'pull-request')
              io.out(
                `  ${git.pullRequest.created ? 'opened' : 'updated'} revert pull request #${git.pullRequest.number}: ${git.pullRequest.url}`,
              );
          }
          if (result.failed) throw new RefusedError(`canary ${opts.env}: ${result.reason}`);
        }),
    );
}
