/**
 * Deploys the model pinned on an environment branch: records a GitHub deployment, runs one
 * `lockstep canary reconcile --env <env>` step (which deploys the candidate at the first traffic
 * step, or advances / rolls back), and sets the deployment status from the result.
 */
import * as core from '@actions/core';
import * as github from '@actions/github';
import { isPermissionDenied } from '../../../lib/report/sticky.ts';
import { lastError } from '../../_shared/cli.ts';
import { runCommand } from '../../_shared/command.ts';
import { envInput, workingDirectory } from '../../_shared/inputs.ts';

type Octokit = ReturnType<typeof github.getOctokit>;

/** Creates the deployment record; a read-only token only costs the record, not the deploy. */
async function createDeployment(octokit: Octokit, env: string): Promise<number | undefined> {
  const { owner, repo } = github.context.repo;
  try {
    const { data } = await octokit.rest.repos.createDeployment({
      owner,
      repo,
      ref: github.context.sha || github.context.ref,
      environment: env,
      auto_merge: false,
      required_contexts: [],
      description: `lockstep deploy to ${env}`,
    });
    return 'id' in data ? data.id : undefined;
  } catch (err) {
    if (!isPermissionDenied(err)) throw err;
    core.warning(`deploy: the token cannot create deployments (403); deploying without a deployment record.`);
    return undefined;
  }
}

export async function run(): Promise<void> {
  try {
    const env = envInput('env');
    const cwd = workingDirectory();
    const octokit = github.getOctokit(core.getInput('github-token', { required: true }));
    const { owner, repo } = github.context.repo;
    const logUrl = `${github.context.serverUrl}/${owner}/${repo}/actions/runs/${github.context.runId}`;
    const id = await createDeployment(octokit, env);
    const status = async (state: 'in_progress' | 'success' | 'failure', description: string) => {
      if (id === undefined) return;
      await octokit.rest.repos.createDeploymentStatus({
        owner,
        repo,
        deployment_id: id,
        state,
        description: description.slice(0, 140),
        log_url: logUrl,
        environment_url: core.getInput('environment-url') || undefined,
      });
    };
    await status('in_progress', `canary reconcile ${env}`);
    const ref = core.getInput('ref');
    const result = await runCommand(
      `deploy ${env}`,
      ['canary', 'reconcile', '--env', env, ...(ref ? ['--ref', ref] : [])],
      cwd,
    );
    const failed = result.code !== 0;
    await status(
      failed ? 'failure' : 'success',
      failed ? lastError(result) : (result.stdout.at(-1) ?? 'deployed'),
    );
    core.setOutput('deployment-id', id === undefined ? '' : String(id));
    if (failed) core.setFailed(`deploy ${env}: ${lastError(result)}`);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
