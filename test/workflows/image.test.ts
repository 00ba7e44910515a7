/**
 * The image build and the model provenance in the workflows: pr.yml builds the image only when
 * its inputs change, deploy.yml builds it for every rollout and hands its digest to the deploy;
 * both use Buildx with the GitHub Actions cache and push through Workload Identity Federation.
 * deploy.yml writes, checks and attests the model's provenance with exactly the permissions the
 * attestation needs. (Pins: pins.test.ts; parser and actionlint: workflows.test.ts.)
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

interface Step {
  id?: string;
  name?: string;
  if?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
interface Job {
  if?: string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  outputs?: Record<string, string>;
  env?: Record<string, string>;
  steps: Step[];
}
const root = path.resolve(import.meta.dirname, '../..');
const workflow = (file: string) =>
  parse(readFileSync(path.join(root, '.github/workflows', file), 'utf8')) as { jobs: Record<string, Job> };
const step = (job: Job, action: string) => job.steps.find((s) => s.uses?.startsWith(`${action}@`));

const pr = workflow('pr.yml');
const deploy = workflow('deploy.yml');

/** The image-inputs pattern of pr.yml's changes job, as the job's grep -E applies it. */
function imagePattern(): RegExp {
  const run = pr.jobs.changes.steps.map((s) => s.run ?? '').join('\n');
  const m = /image_pattern='([^']+)'/.exec(run);
  expect(m, 'changes job sets image_pattern').not.toBeNull();
  return new RegExp(m![1]);
}

describe.each([
  ['pr.yml', pr.jobs.image],
  ['deploy.yml', deploy.jobs.image],
])('%s image job', (_file, job) => {
  it('builds with Buildx and the GitHub Actions cache, tagged with the commit, and outputs the digest', () => {
    expect(step(job, 'docker/setup-buildx-action')).toBeDefined();
    const build = step(job, 'docker/build-push-action')!;
    expect(build.with).toMatchObject({
      context: '.',
      'cache-from': 'type=gha',
      'cache-to': 'type=gha,mode=max',
    });
    expect(build.with!.push).toBe("${{ steps.target.outputs.push == 'true' }}");
    const target = job.steps.find((s) => s.id === 'target')!;
    expect(target.run).toMatch(/echo "tag=\$repository:\$(HEAD_SHA|GITHUB_SHA)"/);
    expect(job.outputs!.digest).toBe(`\${{ steps.${build.id}.outputs.digest }}`);
    expect(job.steps.find((s) => s.id === 'ref')!.run).toContain('image=$REPOSITORY@$DIGEST');
  });

  it('pushes to Artifact Registry through Workload Identity Federation, only when configured', () => {
    const auth = step(job, 'google-github-actions/auth')!;
    expect(auth.with).toMatchObject({
      workload_identity_provider: '${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}',
      token_format: 'access_token',
    });
    expect(auth.with).not.toHaveProperty('credentials_json');
    const login = step(job, 'docker/login-action')!;
    expect(login.with).toMatchObject({
      username: 'oauth2accesstoken',
      password: '${{ steps.gcp.outputs.access_token }}',
    });
    for (const s of [auth, login]) expect(s.if).toBe("steps.target.outputs.push == 'true'");
    expect(job.permissions).toEqual({ contents: 'read', 'id-token': 'write' });
  });
});

describe('pr.yml image build', () => {
  it('runs only when the changes job saw an image input, and pr-check waits for it', () => {
    expect(pr.jobs.image.needs).toBe('changes');
    expect(pr.jobs.image.if).toBe("needs.changes.outputs.image == 'true'");
    expect(pr.jobs.changes.outputs!.image).toBe('${{ steps.filter.outputs.image }}');
    expect(pr.jobs['pr-check'].needs).toEqual(expect.arrayContaining(['image']));
    expect(pr.jobs['pr-check'].steps[0].env!.IMAGE).toBe('${{ needs.image.result }}');
  });

  it.each([
    ['Dockerfile', true],
    ['package.json', true],
    ['package-lock.json', true],
    ['bin/lockstep.mjs', true],
    ['lib/serving/server.ts', true],
    ['stages/train/stage.ts', true],
    ['params.yaml', true],
    ['README.md', false],
    ['test/container/image.test.ts', false],
    ['actions/deploy/src/main.ts', false],
    ['promotion/prod.yaml', false],
    ['docs/lib/x.md', false],
  ])('the image filter %s -> %s', (file, builds) => {
    expect(imagePattern().test(file)).toBe(builds);
  });

  it('fork pull requests build without pushing', () => {
    const target = pr.jobs.image.steps.find((s) => s.id === 'target')!;
    expect(target.run).toContain('[ "$HEAD_REPO" = "$GITHUB_REPOSITORY" ]');
    expect(target.env!.HEAD_REPO).toBe('${{ github.event.pull_request.head.repo.full_name }}');
  });
});

describe('deploy.yml image and provenance', () => {
  it('the deploy waits for the image and gives Vertex AI its digest (LOCKSTEP_IMAGE)', () => {
    expect(deploy.jobs.deploy.needs).toBe('image');
    expect(deploy.jobs.deploy.env!.LOCKSTEP_IMAGE).toBe('${{ needs.image.outputs.image }}');
  });

  it('provenance is written, verified offline and attested with only contents: read, id-token and attestations: write', () => {
    const job = deploy.jobs.provenance;
    expect(job.needs).toEqual(['image', 'deploy']);
    expect(job.permissions).toEqual({ contents: 'read', 'id-token': 'write', attestations: 'write' });
    const run = job.steps.find((s) => s.id === 'statement')!.run!;
    expect(run).toContain('npx lockstep provenance "$GITHUB_SHA" --out "$file"');
    expect(run).toContain('npx lockstep verify "$GITHUB_SHA" --provenance "$file"');
    const attest = step(job, 'actions/attest-build-provenance')!;
    expect(attest.with).toEqual({
      'subject-name': '${{ steps.statement.outputs.name }}',
      'subject-digest': '${{ steps.statement.outputs.digest }}',
    });
    expect(step(job, 'actions/upload-artifact')!.with!.path).toBe('${{ steps.statement.outputs.file }}');
  });

  it('no other job asks for attestations: write', () => {
    for (const [file, wf] of [
      ['pr.yml', pr],
      ['deploy.yml', deploy],
    ] as const)
      for (const [id, job] of Object.entries(wf.jobs))
        if (!(file === 'deploy.yml' && id === 'provenance'))
          expect(job.permissions?.attestations, `${file} ${id}`).toBeUndefined();
  });
});
