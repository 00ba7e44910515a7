/**
 * Monitoring as an action. With `env`: `lockstep monitor --env <env>` (skew and drift of the
 * served model from its prediction logs; with `github`, one issue per environment and a retrain
 * dispatch when the policy allows), the Markdown report in the job summary. Without `env`:
 * `lockstep status --json` (stale stages and missing objects).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as core from '@actions/core';
import { lastError } from '../../_shared/cli.ts';
import { runCommand } from '../../_shared/command.ts';
import { envInput, workingDirectory } from '../../_shared/inputs.ts';

async function monitorEnvironment(cwd: string): Promise<void> {
  const env = envInput('env');
  const github = core.getBooleanInput('github');
  const token = core.getInput('github-token');
  if (github && token) {
    core.setSecret(token);
    process.env.GITHUB_TOKEN = token;
  }
  const args = ['monitor', '--env', env, '--json', ...(github ? ['--github'] : [])];
  if (core.getBooleanInput('fail-on-alert')) args.push('--fail-on-alert');
  const result = await runCommand(`monitor ${env}`, args, cwd);
  try {
    const report = JSON.parse(result.stdout.join('\n')) as { status?: string };
    core.setOutput('status', report.status ?? '');
  } catch {
    core.setOutput('status', '');
  }
  try {
    const md = await readFile(path.join(cwd, 'out', 'monitor', env, 'report.md'), 'utf8');
    await core.summary.addRaw(`\n${md}\n`).write();
  } catch {
    // No report written (the command failed before it): the summary already says why.
  }
  if (result.code !== 0) core.setFailed(`monitor ${env}: ${lastError(result)}`);
}

export async function run(): Promise<void> {
  try {
    const cwd = workingDirectory();
    if (core.getInput('env')) return await monitorEnvironment(cwd);
    const remote = core.getBooleanInput('check-remote');
    const pipeline = core.getInput('pipeline');
    const args = [
      'status',
      '--json',
      ...(remote ? ['--remote'] : []),
      ...(pipeline ? ['--pipeline', pipeline] : []),
    ];
    const result = await runCommand('status', args, cwd);
    if (result.code !== 0) core.setFailed(`status: ${lastError(result)}`);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
