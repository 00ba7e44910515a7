/**
 * `lockstep status [--json] [--remote]`: stale stages and why (the plan, nothing runs), plus
 * locked artifacts missing from the local cache (and the remote with `--remote`). Without
 * `--remote`, an answer whose inputs are all unchanged since the last status is taken from
 * .lockstep/state/status-answer.json (lib/pipeline/status-cache.ts) without loading the planner.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('status')
    .description('show stale stages and why, and locked artifacts missing from the cache (or remote)')
    .option('--json', 'print the status as JSON')
    .option('--remote', 'also check the default remote')
    .option('--pipeline <module>', 'module exporting pipeline(params) (default stages/pipeline.ts)')
    .action(async (opts: { json?: boolean; remote?: boolean; pipeline?: string }) => {
      // Together, not one after another: each import waits on file reads in the thread pool,
      // which on a busy machine costs a no-op status more than the work it imports.
      const [{ findRepo }, { formatStatus }, { STAGES_DIR, defaultPipelinePath }, answers] =
        await Promise.all([
          import('../../repo.ts'),
          import('../../pipeline/status-report.ts'),
          import('../pipeline-module.ts'),
          opts.remote ? undefined : import('../../pipeline/status-cache.ts'),
        ]);
      const repo = findRepo(io.cwd);
      const pipelineFile = opts.pipeline === undefined ? undefined : path.resolve(io.cwd, opts.pipeline);
      // The default pipeline's directory, and the named module's: a new stage file there changes the plan.
      const pipeline = {
        file: pipelineFile,
        dirs: [path.join(repo.root, STAGES_DIR), ...(pipelineFile ? [path.dirname(pipelineFile)] : [])],
      };
      const print = (status: object & Parameters<typeof formatStatus>[0]): void => {
        if (opts.json) io.out(JSON.stringify(status, null, 2));
        else for (const line of formatStatus(status)) io.out(line);
      };
      if (answers) {
        const cached = answers.readCachedAnswer(repo, pipeline);
        const status = cached && (await answers.statusFromAnswer(repo, cached));
        if (status) return print(status);
      }
      // Taken ahead of reading each input: an input that changes while status reads it is not cached.
      let before = answers?.signaturesBefore(repo, pipeline);
      const { loadParams } = await import('../../params.ts');
      const { loadPipeline } = await import('../../pipeline/load.ts');
      const { repoStatus } = await import('../../pipeline/status.ts');
      const { LockstepError } = await import('../../errors.ts');
      const params = loadParams(repo);
      const factory = await loadPipeline({
        named: opts.pipeline,
        cwd: io.cwd,
        fallback: defaultPipelinePath(repo),
      });
      let remote;
      if (opts.remote) {
        const { defaultRemote } = await import('../../store/remote-config.ts');
        remote = await defaultRemote(repo);
        if (!remote) {
          throw new LockstepError(
            '.lockstep/config.yaml: no default remote configured. Add `remote: <name>` and `remotes: {<name>: {url: ...}}`, or set LOCKSTEP_REMOTE.',
          );
        }
      }
      const stages = factory(params);
      if (answers) before = answers.signaturesBefore(repo, pipeline, stages, before);
      let answer;
      const status = await repoStatus(repo, stages, { params, remote, onAnswer: (a) => (answer = a) });
      print(status);
      if (answers && before && answer) answers.writeCachedAnswer(repo, pipeline, stages, answer, before);
    });
}
