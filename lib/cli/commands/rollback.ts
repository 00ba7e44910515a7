/** `lockstep rollback <env>`: open the pull request that restores the previous deployment. */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('rollback <env>')
    .description("open the revert pull request restoring <env>'s previous model (or apply it with --local)")
    .option('--to <commit-or-model>', 'an earlier deployment to restore (default: the previous one)')
    .option('--local', 'apply the rollback to the local environment branch instead of opening a PR')
    .option('--dry', 'print the plan only')
    .option('--json', 'print JSON')
    .action(async (env: string, opts: { to?: string; local?: boolean; dry?: boolean; json?: boolean }) => {
      const { planRollback, rollbackLocal, createRollbackCommit, rollbackTitle } =
        await import('../../promotion/rollback.ts');
      const repo = findRepo(io.cwd);
      const plan = await planRollback(repo, env, opts.to);
      const say = (line: string, extra: Record<string, unknown> = {}) =>
        io.out(opts.json ? JSON.stringify({ ...plan, ...extra }, null, 2) : line);
      const what = `${env}: ${plan.from.model.slice(0, 12)} → ${plan.to.model.slice(0, 12)} (from ${plan.to.commit.slice(0, 8)})`;
      if (opts.dry) return say(`would roll back ${what}`, { dry: true });
      if (opts.local) {
        const res = await rollbackLocal(repo, plan);
        return say(`rolled back ${what}: ${plan.branch} at ${res.commit.slice(0, 8)}`, res);
      }
      const { githubFromEnv } = await import('../github.ts');
      const { upsertPullRequest } = await import('../../promotion/github.ts');
      const { simpleGit } = await import('simple-git');
      const gh = (await githubFromEnv(repo.root, true))!;
      const { branch, commit } = await createRollbackCommit(repo, plan);
      await simpleGit(repo.root).raw(['push', '--force', 'origin', `${branch}:refs/heads/${branch}`]);
      const pr = await upsertPullRequest(gh.client, gh.slug, {
        head: branch,
        base: plan.branch,
        title: rollbackTitle(plan),
        body: `<!-- lockstep-rollback -->\nRestores the lockfile of \`${plan.to.commit}\` (model \`${plan.to.model}\`) on **${env}**, replacing \`${plan.from.model}\`.\n\nMerging this pull request deploys the restored model.\n`,
      });
      say(`${pr.created ? 'opened' : 'updated'} rollback pull request #${pr.number}: ${pr.url}`, {
        branch,
        commit,
        pullRequest: pr,
      });
    });
}
