/**
 * Monitoring as an action. Until a `lockstep monitor` command exists this reports
 * `lockstep status --json` (stale stages and missing objects), which is what drift checks build on.
 */
import * as core from '@actions/core';
import { lastError } from '../../_shared/cli.ts';
import { runCommand } from '../../_shared/command.ts';
import { workingDirectory } from '../../_shared/inputs.ts';

export async function run(): Promise<void> {
  try {
    const remote = core.getBooleanInput('check-remote');
    const pipeline = core.getInput('pipeline');
    const args = [
      'status',
      '--json',
      ...(remote ? ['--remote'] : []),
      ...(pipeline ? ['--pipeline', pipeline] : []),
    ];
    const result = await runCommand('status', args, workingDirectory());
    if (result.code !== 0) core.setFailed(`status: ${lastError(result)}`);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
