/** `lockstep promote <env>` as an action: opens (or updates) the promotion pull request. */
import * as core from '@actions/core';
import { lastError } from '../../_shared/cli.ts';
import { runCommand } from '../../_shared/command.ts';
import { envInput, workingDirectory } from '../../_shared/inputs.ts';

export async function run(): Promise<void> {
  try {
    const env = envInput('env');
    const dry = core.getBooleanInput('dry-run');
    // The promotion code reads the token from the environment, like every GitHub client here.
    const token = core.getInput('github-token');
    if (token) {
      core.setSecret(token);
      process.env.GITHUB_TOKEN = token;
    }
    const result = await runCommand(
      `promote ${env}`,
      ['promote', env, ...(dry ? ['--dry'] : [])],
      workingDirectory(),
    );
    const url = result.stdout.join('\n').match(/https?:\/\/\S+\/pull\/\d+/)?.[0] ?? '';
    core.setOutput('pull-request-url', url);
    if (result.code !== 0) core.setFailed(`promote ${env}: ${lastError(result)}`);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
