/**
 * `lockstep promote <env>`: open the promotion pull request from the previous environment's
 * branch into <env> (or merge locally with --local), after every check passes.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('promote <env>')
    .description('promote the model of the previous environment into <env> (dev → staging → prod)')
    .option('--from <env>', 'source environment (must be the one right before <env>)')
    .option('--local', 'merge in the local repository instead of opening a pull request')
    .option('--dry', 'print the plan and checks without changing anything')
    .option('-r, --remote <url>', 'remote to check artifacts in (default: the policy or repository remote)')
    .option('--json', 'print JSON')
    .action(
      async (
        env: string,
        opts: { from?: string; local?: boolean; dry?: boolean; remote?: string; json?: boolean },
      ) => {
        const { planPromotion, assertPromotable, promoteLocal, promotionTitle, promotionCommit } =
          await import('../../promotion/promote.ts');
        const { renderPromotionBody } = await import('../../promotion/body.ts');
        const { openRemote } = await import('../../store/open-remote.ts');
        const repo = findRepo(io.cwd);
        const remote = opts.remote ? await openRemote(opts.remote) : undefined;
        const plan = await planPromotion(repo, env, { from: opts.from, remote, local: opts.local });
        const report = (extra: Record<string, unknown>) => {
          if (opts.json) io.out(JSON.stringify({ ...plan, lineage: undefined, ...extra }, null, 2));
        };
        if (!opts.json) {
          io.out(
            `promote ${plan.from} → ${plan.env}: model ${plan.model.hash.slice(0, 12)} (${plan.sourceBranch} ${plan.sourceCommit.slice(0, 8)})`,
          );
          for (const c of plan.checks) io.out(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
        }
        if (opts.dry) {
          report({ dry: true });
          if (!plan.ok) assertPromotable(plan);
          return;
        }
        if (plan.upToDate && plan.ok) {
          // Running it again changes nothing: no tag, no record, no commit, no pull request.
          report({ upToDate: true });
          if (!opts.json)
            io.out(
              `${plan.targetBranch} already has ${plan.sourceBranch} ${plan.sourceCommit.slice(0, 8)} (model ${plan.model.hash.slice(0, 12)}): nothing to promote`,
            );
          return;
        }
        if (opts.local) {
          const { EnvironmentMirror } = await import('../../endpoints/vertex-mirror.ts');
          const mirror = await EnvironmentMirror.open(repo, plan.env, { out: io });
          const res = await promoteLocal(repo, plan, { mirror }).finally(() => mirror?.close());
          report({ mergeCommit: res.mergeCommit, tags: res.tags });
          if (!opts.json) {
            const how =
              plan.mode === 'create'
                ? `created ${plan.targetBranch} at`
                : plan.mode === 'fast-forward'
                  ? `fast-forwarded ${plan.targetBranch} to`
                  : `${plan.targetBranch} took ${plan.sourceBranch}'s tree:`;
            io.out(`${how} ${res.mergeCommit.slice(0, 8)}`);
            io.out(`tags: ${res.tags.registered ? res.tags.versionTag + ', ' : ''}${res.tags.stageTag}`);
          }
          return;
        }
        assertPromotable(plan);
        const { githubFromEnv } = await import('../github.ts');
        const { upsertPullRequest } = await import('../../promotion/github.ts');
        const gh = (await githubFromEnv(repo.root, true))!;
        // Fast-forward: the pull request is the source branch itself. Otherwise the head is
        // promote/<env>, one commit on top of the target holding the source tree, so merging the
        // pull request can never conflict and the source branch needs no merge back.
        let head = plan.sourceBranch;
        if (plan.mode === 'take-upstream') {
          const { gitClient } = await import('../../git-client.ts');
          head = `promote/${plan.env}`;
          const commit = await promotionCommit(repo, plan);
          await gitClient(repo.root).raw(['push', '--force', 'origin', `${commit}:refs/heads/${head}`]);
        }
        const pr = await upsertPullRequest(gh.client, gh.slug, {
          head,
          base: plan.targetBranch,
          title: promotionTitle(plan),
          body: renderPromotionBody(plan),
        });
        report({ pullRequest: { ...pr, head } });
        if (!opts.json) io.out(`${pr.created ? 'opened' : 'updated'} pull request #${pr.number}: ${pr.url}`);
      },
    );
}
