/**
 * experiments.yml: requested experiments run in a job matrix, or, with the repository variable
 * LOCKSTEP_EXP_COMPUTE=vertex, in one job that queues them and runs the queue with stages on
 * Vertex AI (project, region, service account and image from repository variables). Exactly one
 * of the two runs; the report waits for both. workflows.test.ts parses (workflow-parser) and
 * lints (actionlint) it like every workflow.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const file = path.resolve(import.meta.dirname, '../../.github/workflows/experiments.yml');

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  if?: string;
  permissions: Record<string, string>;
  strategy?: { matrix: Record<string, unknown> };
  env?: Record<string, string>;
  steps: Step[];
}

const wf = parse(readFileSync(file, 'utf8')) as { jobs: Record<string, Job> };
const { run, vertex, report } = wf.jobs as { run: Job; vertex: Job; report: Job };
const script = (job: Job) => job.steps.map((s) => s.run ?? '').join('\n');

describe('experiments workflow', () => {
  it('experiments workflow runs the matrix or the Vertex AI job, never both, chosen by LOCKSTEP_EXP_COMPUTE', () => {
    expect(run.if).toBe("needs.plan.outputs.allowed == 'true' && vars.LOCKSTEP_EXP_COMPUTE != 'vertex'");
    expect(vertex.if).toBe("needs.plan.outputs.allowed == 'true' && vars.LOCKSTEP_EXP_COMPUTE == 'vertex'");
    expect(run.strategy?.matrix.exp).toBe('${{ fromJSON(needs.plan.outputs.matrix) }}');
    expect(vertex.strategy).toBeUndefined();
    expect(vertex.needs).toBe('plan');
    expect(report.needs).toEqual(['plan', 'run', 'vertex']);
    expect(report.if).toBe("always() && needs.plan.outputs.allowed == 'true'");
  });

  it('experiments workflow Vertex AI job takes the project, region, service account and image from repository variables', () => {
    expect(vertex.permissions).toEqual({ contents: 'write', 'id-token': 'write' });
    expect(vertex.env).toEqual({
      LOCKSTEP_REMOTE: '${{ vars.LOCKSTEP_REMOTE }}',
      LOCKSTEP_VERTEX_PROJECT: '${{ vars.LOCKSTEP_VERTEX_PROJECT }}',
      LOCKSTEP_VERTEX_REGION: '${{ vars.LOCKSTEP_VERTEX_REGION }}',
      LOCKSTEP_SERVICE_ACCOUNT: '${{ vars.LOCKSTEP_JOB_SERVICE_ACCOUNT }}',
    });
    const auth = vertex.steps.find((s) => s.uses?.startsWith('google-github-actions/auth@'))!;
    // Credentials are required here (no `if:`): the jobs cannot run without them.
    expect(auth.if).toBeUndefined();
    const image = vertex.steps.find((s) => s.name === 'The image of this commit')!;
    expect(image.env).toEqual({
      IMAGE_REPOSITORY: '${{ vars.LOCKSTEP_IMAGE_REPOSITORY }}',
      IMAGE: '${{ vars.LOCKSTEP_IMAGE }}',
    });
    expect(image.run).toContain('echo "LOCKSTEP_IMAGE=$IMAGE" >> "$GITHUB_ENV"');
    expect(image.run).toContain('"$IMAGE_REPOSITORY:$head"');
  });

  it('experiments workflow Vertex AI job queues the request, runs the queue and pushes what finished', () => {
    const steps = vertex.steps;
    const at = (text: string) => steps.findIndex((s) => s.run?.includes(text));
    const queue = steps[at('npx lockstep exp comment --queue')]!;
    // The comment text reaches the CLI only through env:, as in the matrix job.
    expect(queue.env?.LOCKSTEP_COMMENT_BODY).toBe(
      run.steps.find((s) => s.run?.includes('exp comment --run'))!.env!.LOCKSTEP_COMMENT_BODY,
    );
    const start = steps[at('npx lockstep exp queue start -j "$JOBS"')]!;
    expect(start.id).toBe('queue');
    expect(start.env?.JOBS).toBe("${{ vars.LOCKSTEP_EXP_JOBS || '4' }}");
    const push = steps[at('npx lockstep exp push origin')]!;
    expect(push.if).toBe("always() && steps.queue.outcome != 'skipped'");
    expect(at('npx lockstep exp comment --queue')).toBeLessThan(at('exp queue start'));
    expect(at('exp queue start')).toBeLessThan(at('exp push origin'));
    expect(at('npx lockstep pull')).toBeLessThan(at('exp queue start'));
    expect(steps.findIndex((s) => s.name === 'The image of this commit')).toBeLessThan(at('exp queue start'));
    expect(script(vertex)).not.toMatch(/--compute local/);
  });
});
