/**
 * Each bundled action run the way the runner runs it (`node <bundle>` with INPUT_*,
 * GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, a real webhook payload in GITHUB_EVENT_PATH and
 * GITHUB_API_URL on a fake GitHub API), against a real git repository with a small pipeline.
 */
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_MARKER } from '../../lib/report/render.ts';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { createFixtureRepo } from './fixture.ts';
import { buildBundles, runAction } from './run-action.ts';

interface Example {
  name: string;
  examples: Record<string, any>[];
}
const examples = createRequire(import.meta.url)('@octokit/webhooks-examples') as Example[];
const payload = (name: string, action?: string): Record<string, any> =>
  structuredClone(
    examples.find((e) => e.name === name)!.examples.find((x) => action === undefined || x.action === action)!,
  );

let bundles: string;
let fake: FakeGitHub;
const repos: TmpRepo[] = [];

beforeAll(async () => {
  [bundles, fake] = await Promise.all([buildBundles(), startFakeGitHub()]);
});
afterAll(async () => {
  await fake.close();
  await rm(bundles, { recursive: true, force: true });
});
afterEach(async () => {
  // Every test starts from a fresh fake GitHub: no comments, deployments or requests of another.
  fake.reset();
  await Promise.all(repos.splice(0).map((r) => r.cleanup()));
});

async function fixture(options: { gatePasses?: boolean } = {}) {
  const repo = await createFixtureRepo(options);
  repos.push(repo);
  return repo;
}

const dispatch = () => payload('workflow_dispatch');
const stageInputs = { pipeline: 'pipeline.mjs' };

describe('bundles', () => {
  it('bundles point worker and pipeline URLs at existing source files, not at the dist directory', async () => {
    const { readdir, readFile } = await import('node:fs/promises');
    const { existsSync } = await import('node:fs');
    const { fileURLToPath } = await import('node:url');
    const files = (await readdir(bundles, { recursive: true })).filter((f) => f.endsWith('.js'));
    const urls = new Set<string>();
    for (const f of files) {
      const text = await readFile(`${bundles}/${f}`, 'utf8');
      expect(text, f).not.toMatch(/new URL\(\s*["']\.{1,2}\/[^"']+["']\s*,\s*import\.meta\.url/);
      for (const m of text.matchAll(/new URL\("(file:[^"]+)"\)/g)) urls.add(m[1]);
    }
    expect([...urls].some((u) => u.endsWith('/lib/store/hash-worker.mjs'))).toBe(true);
    for (const u of urls) expect(existsSync(fileURLToPath(u)), u).toBe(true);
  });
});

describe('stage actions', () => {
  it('validate annotates each anomaly on its file and writes outputs and the summary', async () => {
    const repo = await fixture();
    const run = await runAction(bundles, 'validate', {
      cwd: repo.root,
      inputs: stageInputs,
      eventName: 'workflow_dispatch',
      event: dispatch(),
    });
    expect(run.stderr + run.stdout).not.toMatch(/::error::/);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(
      '::error title=validate silent,file=data/a.wav::RMS -80 dBFS is below -60 dBFS',
    );
    expect(run.stdout).toContain(
      '::warning title=validate short,file=data/b.wav::duration 0.2 s is below 0.3 s',
    );
    expect(run.outputs).toMatchObject({ ok: 'true', valid: 'false', errors: '1', warnings: '1' });
    expect(JSON.parse(run.outputs.stages)).toEqual([
      expect.objectContaining({ stage: 'validate', status: 'ran' }),
    ]);
    expect(run.summary).toContain('## lockstep: validate ✅');
    expect(run.summary).toContain('| error | silent | data/a.wav |');
  });

  it('gate runs its upstream, sets passed, and is skipped as up to date on the second run', async () => {
    const repo = await fixture({ gatePasses: true });
    const opts = { cwd: repo.root, inputs: stageInputs, eventName: 'workflow_dispatch', event: dispatch() };
    const first = await runAction(bundles, 'gate', opts);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.outputs.passed).toBe('true');
    expect(first.summary).toContain('Gate passed');
    const ran = JSON.parse(first.outputs.stages) as { stage: string; status: string }[];
    expect(ran.map((s) => [s.stage, s.status])).toEqual([
      ['validate', 'ran'],
      ['evaluate', 'ran'],
      ['gate', 'ran'],
    ]);

    const second = await runAction(bundles, 'gate', opts);
    expect(second.code).toBe(0);
    const again = JSON.parse(second.outputs.stages) as { stage: string; status: string; reason: string }[];
    expect(again.every((s) => s.status === 'skipped')).toBe(true);
    expect(second.summary).toMatch(/\| gate \| skipped \| up to date \|/);
  });

  it('a gate that says no fails the step with its reason', async () => {
    const repo = await fixture({ gatePasses: false });
    const run = await runAction(bundles, 'gate', {
      cwd: repo.root,
      inputs: stageInputs,
      eventName: 'workflow_dispatch',
      event: dispatch(),
    });
    expect(run.code).toBe(1);
    expect(run.outputs).toMatchObject({ ok: 'false', passed: 'false' });
    expect(run.stdout).toMatch(/::error::gate: .*0\.70 < 0\.90/);
    expect(run.summary).toContain('Gate failed');
  });

  it('a failing stage fails the step, names the error, and still writes outputs and the summary', async () => {
    const repo = await fixture();
    repo.write('data/train-fails', '1');
    repo.commit('make training fail');
    const run = await runAction(bundles, 'train', {
      cwd: repo.root,
      inputs: stageInputs,
      eventName: 'workflow_dispatch',
      event: dispatch(),
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/::error::train: [^\n{]*fixture training diverged/);
    expect(run.outputs.ok).toBe('false');
    expect(JSON.parse(run.outputs.stages)).toEqual([
      expect.objectContaining({ stage: 'train', status: 'failed' }),
    ]);
    expect(run.summary).toContain('## lockstep: train ❌ failed');
  });

  it('repro with allow-run false refuses before running when a stage would run', async () => {
    const repo = await fixture();
    const run = await runAction(bundles, 'repro', {
      cwd: repo.root,
      inputs: { ...stageInputs, stages: 'validate', 'allow-run': 'false' },
      eventName: 'push',
      event: payload('push'),
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /::error::repro validate: this environment does not allow retraining, but validate would run/,
    );
    expect(repo.exists('out/validate/report.json')).toBe(false);
  });
});

describe('gate action for an environment (deploy)', () => {
  it("gate with env checks the environment's thresholds against the model the branch pinned before", async () => {
    const repo = await fixture();
    repo.write(
      'promotion/dev.yaml',
      [
        'branch: dev',
        'endpoint:',
        '  kind: local',
        'allow_retrain: true',
        'gate:',
        '  thresholds:',
        '    - { metric: accuracy, direction: higher, min: 0.5, tolerance: 0.01 }',
        'canary:',
        '  steps: [50, 100]',
        '  analysis: { max_error_rate: 0.05, max_p99_ms: 500, max_divergence: 0.5, min_requests: 10 }',
        '',
      ].join('\n'),
    );
    const opts = { cwd: repo.root, inputs: stageInputs, eventName: 'push', event: payload('push') };
    expect((await runAction(bundles, 'evaluate', opts)).code).toBe(0);
    const before = repo.commit('dev runs the model with accuracy 0.75');
    repo.write('quality.json', JSON.stringify({ accuracy: 0.6 }));
    const evaluate = await runAction(bundles, 'evaluate', opts);
    expect(JSON.parse(evaluate.outputs.metrics).accuracy).toBe(0.6);
    repo.commit('candidate with accuracy 0.6');

    const worse = await runAction(bundles, 'gate', {
      ...opts,
      inputs: { env: 'dev', 'baseline-rev': before },
    });
    expect(worse.code).toBe(1);
    expect(worse.outputs.passed).toBe('false');
    expect(worse.stdout).toMatch(/::error::gate for dev: accuracy: /);
    expect(worse.summary).toContain('Thresholds from promotion/dev.yaml');
    expect(worse.summary).toContain(`baseline: \`dev\` at \`${before.slice(0, 7)}\``);

    // A new environment branch (before = 000...) has no deployed model: value thresholds only.
    const first = await runAction(bundles, 'gate', {
      ...opts,
      inputs: { env: 'dev', 'baseline-rev': '0'.repeat(40) },
    });
    expect(first.code, first.stdout).toBe(0);
    expect(first.outputs.passed).toBe('true');
    expect(JSON.parse(first.outputs.verdict)).toMatchObject({ passed: true, baseline: null });
  });
});

describe('report action', () => {
  it('creates one sticky comment with diffs against the base, then updates it in place instead of adding another', async () => {
    const repo = await fixture();
    const gateOpts = {
      cwd: repo.root,
      inputs: stageInputs,
      eventName: 'workflow_dispatch',
      event: dispatch(),
    };
    expect((await runAction(bundles, 'gate', gateOpts)).code).toBe(0);
    const base = repo.commit('base branch: lockfile with accuracy 0.75');
    repo.write('quality.json', JSON.stringify({ accuracy: 0.85 }));
    const gate = await runAction(bundles, 'gate', gateOpts);
    expect(gate.code).toBe(0);
    const event = payload('pull_request', 'opened');
    event.number = event.pull_request.number = 71;
    event.pull_request.base.sha = base;
    // Someone else's comment on the PR first: the marker, not the position, finds ours.
    fake.state.comments.set(71, [
      {
        id: 1,
        body: 'LGTM',
        user: { login: 'octocat', type: 'User' },
        html_url: '',
        created_at: '',
        updated_at: '',
      },
    ]);
    const opts = {
      cwd: repo.root,
      inputs: { stages: gate.outputs.stages, notes: 'fork PR: no cache push' },
      eventName: 'pull_request',
      event,
      apiUrl: fake.url,
    };
    const first = await runAction(bundles, 'report', opts);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    expect(first.outputs.mode).toBe('created');
    const comments = fake.state.comments.get(71)!;
    expect(comments).toHaveLength(2);
    const body = comments[1].body;
    expect(body.startsWith(REPORT_MARKER)).toBe(true);
    expect(body).toContain('| angry | **3** | 1 | 0.75 |');
    expect(body).toContain('✅ **Gate passed**');
    expect(body).toContain('`confusion.svg`');
    expect(body).toContain('https://github.com/Codertocat/Hello-World/actions/runs/4242#artifacts');
    expect(body).toContain('- fork PR: no cache push');
    expect(body).toMatch(/\| evaluate\.accuracy \| 0\.75 \| 0\.85 \| \+0\.1/);
    expect(body).toMatch(/\| validate \| skipped \| up to date \|/);
    expect(body).toMatch(/\| evaluate \| ran \| [^|]*quality\.json[^|]*\|/);
    expect(first.summary).toContain(REPORT_MARKER);

    const second = await runAction(bundles, 'report', opts);
    expect(second.code).toBe(0);
    expect(second.outputs.mode).toBe('updated');
    expect(second.outputs['comment-id']).toBe(first.outputs['comment-id']);
    expect(fake.state.comments.get(71)).toHaveLength(2);
    const writes = fake.requests.filter((r) => r.method !== 'GET' && r.path.includes('/comments'));
    expect(writes.map((r) => r.method)).toEqual(['POST', 'PATCH']);
  });

  it("a fork's read-only token (403) gives a warning and the report in the job summary; the step succeeds", async () => {
    const repo = await fixture();
    const event = payload('pull_request', 'opened');
    event.number = event.pull_request.number = 72;
    event.pull_request.base.sha = repo.git('rev-parse', 'HEAD');
    fake.state.readOnly = true;
    try {
      const run = await runAction(bundles, 'report', {
        cwd: repo.root,
        eventName: 'pull_request',
        event,
        apiUrl: fake.url,
      });
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.stdout).toMatch(
        /::warning::report: the token cannot comment on PR #72 \(403, read-only token/,
      );
      expect(run.outputs.mode).toBe('summary-only');
      expect(run.summary).toContain(REPORT_MARKER);
      expect(run.summary).toContain('The gate did not run');
      expect(fake.state.comments.get(72) ?? []).toHaveLength(0);
      expect(fake.requests.some((r) => r.status === 403 && r.path.endsWith('/issues/72/comments'))).toBe(
        true,
      );
    } finally {
      fake.state.readOnly = false;
    }
  });
});

describe('command actions', () => {
  it('monitor reports lockstep status as JSON in its output and the summary', async () => {
    const repo = await fixture();
    const opts = { cwd: repo.root, inputs: stageInputs, eventName: 'workflow_dispatch', event: dispatch() };
    expect((await runAction(bundles, 'validate', opts)).code).toBe(0);
    const run = await runAction(bundles, 'monitor', opts);
    expect(run.code, run.stdout).toBe(0);
    expect(run.outputs.ok).toBe('true');
    const status = JSON.stringify(JSON.parse(run.outputs.output));
    expect(status).toContain('validate');
    expect(run.summary).toContain('`lockstep status --json --pipeline pipeline.mjs`');
  });

  it('monitor with env runs lockstep monitor and fails the step with its one-line reason', async () => {
    const repo = await fixture();
    const run = await runAction(bundles, 'monitor', {
      cwd: repo.root,
      inputs: { env: 'dev' },
      eventName: 'schedule',
      event: dispatch(),
    });
    expect(run.code).toBe(1);
    expect(run.outputs.ok).toBe('false');
    expect(run.stdout).toMatch(/::error::monitor dev: [^\n]+/);
    expect(run.summary).toContain('`lockstep monitor --env dev --json`');
  });

  it('canary fails the step when reconcile fails, with the one-line reason', async () => {
    const repo = await fixture();
    const run = await runAction(bundles, 'canary', {
      cwd: repo.root,
      inputs: { env: 'staging' },
      eventName: 'schedule',
      event: dispatch(),
    });
    expect(run.code).toBe(1);
    expect(run.outputs.ok).toBe('false');
    expect(run.stdout).toMatch(/::error::canary reconcile staging: [^\n]+/);
    expect(run.summary).toContain('`lockstep canary reconcile --env staging`');
  });

  it("promote fails the step with the CLI's one-line error", async () => {
    const repo = await fixture();
    const run = await runAction(bundles, 'promote', {
      cwd: repo.root,
      inputs: { env: 'staging', 'dry-run': 'true' },
      eventName: 'workflow_dispatch',
      event: dispatch(),
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/::error::promote staging: promotion\/staging\.yaml: [^\n]*\n/);
    expect(run.stdout).toContain('::add-mask::ghs_faketoken');
    expect(run.summary).toContain('## lockstep: promote staging ❌ failed');
  });
});

describe('deploy action', () => {
  it('records a GitHub deployment whose statuses follow the reconcile result (a failed reconcile: failure)', async () => {
    const repo = await fixture();
    const run = await runAction(bundles, 'deploy', {
      cwd: repo.root,
      inputs: { env: 'dev' },
      eventName: 'push',
      event: payload('push'),
      apiUrl: fake.url,
    });
    const deployment = fake.state.deployments.at(-1)!;
    expect(deployment).toMatchObject({ environment: 'dev', sha: payload('push').after });
    expect(run.outputs['deployment-id']).toBe(String(deployment.id));
    // The fixture has no promotion/dev.yaml, so the reconcile fails: the step fails, and the
    // deployment's last status says so.
    expect(run.outputs.ok).toBe('false');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('::error::deploy dev: promotion/dev.yaml: missing.');
    expect(deployment.statuses.map((s) => s.state)).toEqual(['in_progress', 'failure']);
    expect(deployment.statuses[1].log_url).toBe(
      'https://github.com/Codertocat/Hello-World/actions/runs/4242',
    );
    expect(run.summary).toContain('## lockstep: deploy dev');
  });

  it('rejects an unknown environment with a message naming the input', async () => {
    const repo = await fixture();
    const run = await runAction(bundles, 'deploy', {
      cwd: repo.root,
      inputs: { env: 'qa' },
      eventName: 'push',
      event: payload('push'),
      apiUrl: fake.url,
    });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('::error::input env: unknown environment "qa". Use dev, staging or prod.');
  });
});
