/**
 * `lockstep canary reconcile --env <env>` as an action: one idempotent reconcile step, judged
 * against the environment branch's lockfile (or `ref`). With `github-token` the CLI records each
 * step as a GitHub deployment status and opens the revert pull request after a rollback.
 */
import * as core from '@actions/core';
import { lastError } from '../../_shared/cli.ts';
import { runCommand } from '../../_shared/command.ts';
import { envInput, workingDirectory } from '../../_shared/inputs.ts';

export async function run(): Promise<void> {
  try {
    const env = envInput('env');
    const ref = core.getInput('ref');
    const token = core.getInput('github-token');
    if (token) process.env.LOCKSTEP_GITHUB_TOKEN = token;
    const result = await runCommand(
      `canary ${env}`,
      ['canary', 'reconcile', '--env', env, ...(ref ? ['--ref', ref] : [])],
      workingDirectory(),
    );
    if (result.code !== 0) core.setFailed(`canary reconcile ${env}: ${lastError(result)}`);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
