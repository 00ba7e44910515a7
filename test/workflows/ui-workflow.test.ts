/**
 * ui.yml: the dashboard is exported and published on GitHub Pages on pushes to the environment
 * branches, with the two official Pages actions, the least privileges each job needs, and full
 * history (the registry reads every branch). workflows.test.ts parses and lints it like the rest.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const file = path.resolve(import.meta.dirname, '../../.github/workflows/ui.yml');

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string;
  permissions: Record<string, string>;
  environment?: { name: string };
  steps: Step[];
}

describe('ui workflow', () => {
  const wf = parse(readFileSync(file, 'utf8')) as {
    on: { push: { branches: string[] } };
    concurrency: { group: string; 'cancel-in-progress': boolean };
    jobs: { build: Job; deploy: Job };
  };

  it('ui workflow runs on pushes to dev, staging and prod and never cancels a publication', () => {
    expect(wf.on.push.branches).toEqual(['dev', 'staging', 'prod']);
    expect(wf.concurrency['cancel-in-progress']).toBe(false);
  });

  it('ui workflow exports with full history and uploads the export as the Pages artifact', () => {
    const { build } = wf.jobs;
    expect(build.permissions).toEqual({ contents: 'read' });
    const checkout = build.steps.find((s) => s.uses?.startsWith('actions/checkout@'))!;
    expect(checkout.with?.['fetch-depth']).toBe(0);
    const run = build.steps.map((s) => s.run ?? '').join('\n');
    expect(run).toContain('npx lockstep ui --export "$RUNNER_TEMP/site"');
    const upload = build.steps.find((s) => s.uses?.startsWith('actions/upload-pages-artifact@'))!;
    expect(upload.with?.path).toBe('${{ runner.temp }}/site');
  });

  it('ui workflow deploys with deploy-pages in the github-pages environment, pages and id-token only', () => {
    const { deploy } = wf.jobs;
    expect(deploy.needs).toBe('build');
    expect(deploy.permissions).toEqual({ pages: 'write', 'id-token': 'write' });
    expect(deploy.environment?.name).toBe('github-pages');
    expect(deploy.steps.map((s) => s.uses?.split('@')[0])).toEqual(['actions/deploy-pages']);
  });
});
