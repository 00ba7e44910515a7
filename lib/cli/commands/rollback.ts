/**
 * `lockstep rollback <env>`: return all of <env>'s traffic to the previous model in one step
 * (no canary: the previous model served before), then make git agree: with --local a rollback
 * commit on the environment branch, otherwise the revert pull request.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { whileLocked } from '../locked.ts';
import { findRepo } from '../../repo.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('rollback <env>')
    .description(
      "switch <env>'s traffic back to its previous model at once, then open the revert pull request (or commit it with --local)",
    )
    .option('--to <commit-or-model>', 'an earlier deployment to restore (default: the previous one)')
    .option('--local', 'commit the rollback to the local environment branch instead of opening a PR')
    .option('--dry', 'print the plan only')
    .option('--json', 'print JSON')
    .action(async (env: string, opts: { to?: string; local?: boolean; dry?: boolean; json?: boolean }) =>
      whileLocked(io, 'rollback', opts.dry, async () => {
        const { planRollback, rollbackLocal, openRollbackPr } = await import('../../promotion/rollback.ts');
        const { readDesiredModel } = await import('../../canary/desired.ts');
        const { switchTraffic } = await import('../../canary/switch.ts');
        const { openEndpoint } = await import('../../endpoints/open.ts');
        const { recordDeployment } = await import('../../promotion/records.ts');
        const { postDeploymentStatus } = await import('../../canary/record.ts');
        const { githubFromEnv } = await import('../github.ts');
        const repo = findRepo(io.cwd);
        const plan = await planRollback(repo, env, opts.to);
        const say = (line: string, extra: Record<string, unknown> = {}) =>
          io.out(opts.json ? JSON.stringify({ ...plan, ...extra }, null, 2) : line);
        const what = `${env}: ${plan.from.model.slice(0, 12)} → ${plan.to.model.slice(0, 12)} (from ${plan.to.commit.slice(0, 8)})`;
        const reason = `lockstep rollback ${env}: ${plan.from.model.slice(0, 12)} replaced by ${plan.to.model.slice(0, 12)} at 100% in one step`;
        const model = await readDesiredModel(repo, { ref: plan.to.commit });
        const { endpoint } = await openEndpoint(repo, env, { out: io, log: false });
        // Traffic first: the previous model serves everything before git is touched.
        const traffic = await switchTraffic(endpoint, model, reason, { dry: opts.dry });
        if (opts.dry)
          return say(`would roll back ${what}:\n${traffic.plan.map((p) => `  would ${p}`).join('\n')}`, {
            dry: true,
            traffic: traffic.plan,
          });
        const github = opts.local ? undefined : await githubFromEnv(repo.root, true);
        if (!github) {
          const { EnvironmentMirror } = await import('../../endpoints/vertex-mirror.ts');
          const mirror = await EnvironmentMirror.open(repo, env, { out: io });
          const res = await rollbackLocal(repo, plan, { detail: reason, mirror }).finally(() =>
            mirror?.close(),
          );
          return say(
            `rolled back ${what}: ${plan.to.model.slice(0, 12)} serves 100% (deployed model ${traffic.serving}); ${plan.branch} at ${res.commit.slice(0, 8)}`,
            { ...res, traffic: traffic.plan },
          );
        }
        const record = {
          env,
          commit: plan.to.commit,
          model: plan.to.model,
          source: 'rollback',
          status: 'rolled_back',
          detail: reason,
        };
        await recordDeployment(repo, record);
        await postDeploymentStatus(github, record);
        const pr = await openRollbackPr(repo, plan, github, reason);
        say(
          `rolled back ${env}'s traffic to ${plan.to.model.slice(0, 12)} (deployed model ${traffic.serving}); ${pr.pullRequest.created ? 'opened' : 'updated'} rollback pull request #${pr.pullRequest.number}: ${pr.pullRequest.url}`,
          { ...pr, traffic: traffic.plan },
        );
      }),
    );
}
