/** `lockstep history <env>`: what was deployed in an environment and when. */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('history <env>')
    .description('what was deployed in <env> and when (git history, deployment records, GitHub Deployments)')
    .option('--json', 'print JSON')
    .action(async (env: string, opts: { json?: boolean }) => {
      // In one wave: each import waits on thread-pool file reads, so four in a row cost four waits.
      const [{ environmentHistory }, { githubFromEnv }, { renderTable }, { servingModel }] =
        await Promise.all([
          import('../../promotion/history.ts'),
          import('../github.ts'),
          import('../../table.ts'),
          import('../../canary/serving.ts'),
        ]);
      const repo = findRepo(io.cwd);
      const github = await githubFromEnv(repo.root, false);
      const h = await environmentHistory(repo, env, { github });
      // "Current" is what serves: the local endpoint's model when there is one, else the branch head.
      const serving = await servingModel(repo, env);
      if (serving) {
        const at = h.changes.find((c) => c.model === serving.model);
        for (const c of h.changes) c.current = c === at;
      }
      if (opts.json) return io.out(JSON.stringify({ ...h, serving }, null, 2));
      io.out(`${env} (branch ${h.branch}):`);
      if (serving)
        io.out(
          `serving: ${serving.model.slice(0, 12)} at ${serving.percent}% (deployed model ${serving.deployedModelId})${h.changes[0] && h.changes[0].model !== serving.model ? `; the branch pins ${h.changes[0].model.slice(0, 12)}` : ''}`,
        );
      io.out(
        renderTable(
          ['', 'date', 'commit', 'model', 'f1_macro', 'tags', 'subject'],
          h.changes.map((c) => [
            c.current ? '*' : '',
            c.date.slice(0, 16).replace('T', ' '),
            c.commit.slice(0, 8),
            c.model.slice(0, 12),
            c.metrics.f1_macro?.toFixed(3) ?? '',
            c.tags.join(' '),
            c.subject,
          ]),
        ),
      );
      if (h.records.length > 0) {
        io.out('\ndeployment records:');
        for (const r of h.records)
          io.out(
            `  ${r.at}  ${r.status.padEnd(18)} ${r.model.slice(0, 12)}  ${r.source}${r.percent !== undefined ? ` ${r.percent}%` : ''}${r.detail ? ': ' + r.detail : ''}${r.image ? ` (image ${r.image.split('@')[1]?.slice(0, 19) ?? r.image})` : ''}`,
          );
      }
      if (h.github.length > 0) {
        io.out('\nGitHub deployments:');
        for (const d of h.github) {
          io.out(`  ${d.created_at}  ${d.state.padEnd(12)} ${d.sha.slice(0, 8)}  ${d.description ?? ''}`);
          // Older statuses of the same deployment (the canary's steps), oldest first.
          for (const st of d.statuses.slice(1).reverse())
            io.out(
              `      ${(st.created_at ?? '').padEnd(24)} ${st.state.padEnd(12)} ${st.description ?? ''}`,
            );
        }
      }
    });
}
