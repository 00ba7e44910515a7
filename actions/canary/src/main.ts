/** `lockstep canary reconcile --env <env>` as an action: one idempotent reconcile step. */
import * as core from '@actions/core';
import { lastError } from '../../_shared/cli.ts';
import { runCommand } from '../../_shared/command.ts';
import { envInput, workingDirectory } from '../../_shared/inputs.ts';

export async function run(): Promise<void> {
  try {
    const env = envInput('env');
    const result = await runCommand(
      `canary ${env}`,
      ['canary', 'reconcile', '--env', env],
      workingDirectory(),
    );
    if (result.code !== 0) core.setFailed(`canary reconcile ${env}: ${lastError(result)}`);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
