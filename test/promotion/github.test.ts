import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { startFakeGitHub, type FakeGitHub, type Route } from '../support/fake-github.ts';
import { GOOD, makeRegistryRepo, type RegistryRepo } from './fixture.ts';

let r: RegistryRepo;
let gh: FakeGitHub;
const saved: Record<string, string | undefined> = {};

/** Issues and workflow-dispatch routes for the monitoring tests (the default table has none). */
const issueRoutes: Route[] = [
  {
    method: 'GET',
    path: '/repos/:owner/:repo/issues',
    handle: ({ state }) => ({ status: 200, body: (state as any).issues ?? [] }),
  },
  {
    method: 'POST',
    path: '/repos/:owner/:repo/issues',
    handle: ({ state, body }) => {
      const s = state as any;
      s.issues ??= [];
      const issue = { number: state.nextId++, state: 'open', ...body };
      s.issues.push(issue);
      return { status: 201, body: issue };
    },
  },
  {
    method: 'PATCH',
    path: '/repos/:owner/:repo/issues/:number',
    handle: ({ state, params, body }) => {
      const issue = ((state as any).issues ?? []).find((i: any) => i.number === Number(params.number));
      if (!issue) return { status: 404, body: { message: 'Not Found' } };
      Object.assign(issue, body);
      return { status: 200, body: issue };
    },
  },
  {
    method: 'POST',
    path: '/repos/:owner/:repo/actions/workflows/:workflow/dispatches',
    handle: ({ state, params, body }) => {
      const s = state as any;
      (s.dispatches ??= []).push({ workflow: params.workflow, ...body });
      return { status: 204 };
    },
  },
];

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', r.dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

beforeEach(async () => {
  r = await makeRegistryRepo();
  gh = await startFakeGitHub({ routes: issueRoutes });
  for (const k of [
    'GITHUB_TOKEN',
    'GITHUB_API_URL',
    'GITHUB_REPOSITORY',
    'GH_TOKEN',
    'LOCKSTEP_GITHUB_TOKEN',
    'GITHUB_REF_NAME',
  ]) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  process.env.GITHUB_TOKEN = 'ghs_fake_installation_token';
  process.env.GITHUB_API_URL = gh.url;
  process.env.GITHUB_REPOSITORY = `${gh.state.owner}/${gh.state.repo}`;
});

afterEach(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await gh.close();
  await r.cleanup();
});

describe('promote through GitHub', () => {
  it('promote opens one pull request with the report and updates it on a re-run', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    const first = await cli('promote', 'staging');
    expect(first.err).toBe('');
    expect(first.out).toMatch(/opened pull request #\d+/);
    expect(gh.state.pulls).toHaveLength(1);
    const pr = gh.state.pulls[0];
    expect(pr.head.ref).toBe('dev');
    expect(pr.base.ref).toBe('staging');
    expect(pr.title).toBe(`Promote model ${v1.model.hash.slice(0, 12)} from dev to staging`);
    expect(pr.body).toContain('<!-- lockstep-promotion -->');
    expect(pr.body).toMatch(/Gate for staging: ✅ passed/);
    expect(pr.body).toMatch(/\| f1_macro \| — \| 0\.8000 \| — \|/);
    expect(pr.body).toContain(v1.model.hash);
    const again = await cli('promote', 'staging');
    expect(again.out).toMatch(/updated pull request/);
    expect(gh.state.pulls).toHaveLength(1);
    // The local branches are untouched: merging the PR on GitHub is what deploys.
    expect(await r.git.raw(['branch', '--list', 'staging'])).toBe('');
  });

  it('promote explains a read-only token in one line', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    gh.state.readOnly = true;
    const res = await cli('promote', 'staging');
    expect(res.code).toBe(1);
    expect(res.err.split('\n')).toHaveLength(1);
    expect(res.err).toMatch(/GitHub answered 403 \(the token cannot write pull requests\)/);
  });

  it('promote without a token is a usage error that names GITHUB_TOKEN', async () => {
    await r.commitModel({ content: 'v1', metrics: GOOD });
    delete process.env.GITHUB_TOKEN;
    const res = await cli('promote', 'staging');
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/GITHUB_TOKEN: not set/);
  });

  it('promote does not open a pull request when a check fails', async () => {
    await r.commitModel({ content: 'weak', metrics: { accuracy: 0.3, f1_macro: 0.3, mcc: 0.1 } });
    const res = await cli('promote', 'staging');
    expect(res.code).toBe(1);
    expect(gh.state.pulls).toHaveLength(0);
  });

  it('rollback pushes a revert branch and opens its pull request', async () => {
    const origin = await mkdtemp(path.join(os.tmpdir(), 'lockstep-origin-'));
    try {
      await simpleGit(origin).raw(['init', '-q', '--bare']);
      await r.git.addRemote('origin', origin);
      const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
      await cli('promote', 'staging', '--local');
      await r.commitModel({ content: 'v2', metrics: GOOD });
      await cli('promote', 'staging', '--local');
      const res = await cli('rollback', 'staging');
      expect(res.err).toBe('');
      expect(res.out).toMatch(/opened rollback pull request/);
      const pr = gh.state.pulls.at(-1)!;
      expect(pr.base.ref).toBe('staging');
      expect(pr.head.ref).toBe(`rollback/staging-${v1.model.hash.slice(0, 12)}`);
      const pushed = await simpleGit(origin).raw(['show', `${pr.head.ref}:artifacts.lock.yaml`]);
      expect(pushed).toContain(v1.model.hash);
    } finally {
      await rm(origin, { recursive: true, force: true });
    }
  });

  it('history reads GitHub deployments with their latest status', async () => {
    const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
    await cli('promote', 'staging', '--local');
    gh.state.deployments.push({
      id: 7,
      sha: v1.commit,
      ref: 'staging',
      environment: 'staging',
      description: 'deploy',
      created_at: '2026-11-20T10:00:00Z',
      payload: {},
      statuses: [{ id: 1, state: 'success', description: 'canary reached 100%' }],
    } as any);
    const h = JSON.parse((await cli('history', 'staging', '--json')).out);
    expect(h.github).toEqual([
      expect.objectContaining({
        id: 7,
        sha: v1.commit,
        state: 'success',
        description: 'canary reached 100%',
      }),
    ]);
  });
});

describe('monitor on GitHub', () => {
  async function alertingWorkspace(): Promise<void> {
    // Training reference: one feature centred at 0; serving traffic centred at 5.
    const edges = Array.from({ length: 21 }, (_, i) => -1 + i * 0.1);
    const counts = Array.from({ length: 20 }, () => 10);
    await mkdir(path.join(r.dir, 'out', 'features'), { recursive: true });
    await writeFile(path.join(r.dir, 'out/features/stats.json'), JSON.stringify({ f0: { edges, counts } }));
    await writeFile(
      path.join(r.dir, 'out/features/index.json'),
      JSON.stringify({
        featureNames: ['f0'],
        labels: ['a', 'b'],
        splits: { train: { labels: [0, 1, 0, 1] } },
      }),
    );
    const logs = path.join(r.dir, '.lockstep', 'logs', 'dev');
    await mkdir(logs, { recursive: true });
    const now = Date.now();
    const lines = Array.from({ length: 200 }, (_, i) =>
      JSON.stringify({
        time: new Date(now - (i + 1) * 60_000).toISOString(),
        env: 'dev',
        status: 'ok',
        label: i % 2 ? 'a' : 'b',
        summary: [5 + (i % 10) * 0.01],
        latencyMs: 3,
      }),
    );
    await writeFile(path.join(logs, 'predictions-20261120T000000000Z-1-0.jsonl'), lines.join('\n') + '\n');
  }

  it('monitor --github opens one issue per environment, updates it, and dispatches retraining when allowed', async () => {
    await alertingWorkspace();
    const policy = await readFile(path.join(r.dir, 'promotion/dev.yaml'), 'utf8');
    await writeFile(path.join(r.dir, 'promotion/dev.yaml'), policy + 'auto_retrain: true\n');
    process.env.GITHUB_REF_NAME = 'main';
    const first = await cli('monitor', '--env', 'dev', '--github');
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/monitor dev: alert/);
    expect(first.out).toMatch(/skew: f0 JS/);
    const second = await cli('monitor', '--env', 'dev', '--github', '--fail-on-alert');
    expect(second.code).toBe(1);
    const issues = (gh.state as any).issues;
    expect(issues).toHaveLength(1);
    expect(issues[0].body).toContain('<!-- lockstep-monitor:dev -->');
    expect(issues[0].labels).toEqual(['lockstep-monitor', 'env:dev']);
    expect((gh.state as any).dispatches).toHaveLength(2);
    expect((gh.state as any).dispatches[0]).toMatchObject({ workflow: 'retrain.yml', ref: 'main' });
    const report = JSON.parse(await readFile(path.join(r.dir, 'out/monitor/dev/report.json'), 'utf8'));
    expect(report.status).toBe('alert');
  });

  it('monitor does not dispatch retraining when the policy does not allow it', async () => {
    await alertingWorkspace();
    await cli('monitor', '--env', 'dev', '--github');
    expect((gh.state as any).issues).toHaveLength(1);
    expect((gh.state as any).dispatches).toBeUndefined();
  });
});

describe('monitor log sources', () => {
  it('monitor reads prediction logs from a gs:// prefix and renders the distribution plot', async () => {
    const { FakeGcs } = await import('../support/fake-gcs.ts');
    const fake = await FakeGcs.start();
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fake.url;
    try {
      const edges = Array.from({ length: 21 }, (_, i) => -1 + i * 0.1);
      await mkdir(path.join(r.dir, 'out', 'features'), { recursive: true });
      await writeFile(
        path.join(r.dir, 'out/features/stats.json'),
        JSON.stringify({ f0: { edges, counts: Array(20).fill(10) } }),
      );
      await writeFile(
        path.join(r.dir, 'out/features/index.json'),
        JSON.stringify({ featureNames: ['f0'], labels: ['a', 'b'], splits: { train: { labels: [0, 1] } } }),
      );
      const now = Date.now();
      const line = (i: number, v: number) =>
        JSON.stringify({
          time: new Date(now - (i + 1) * 60_000).toISOString(),
          env: 'dev',
          status: 'ok',
          label: 'a',
          summary: [v],
          latencyMs: 2,
        });
      // Two shipped files (one with a torn last line) and an object that is not a log.
      fake.putObject(
        'logs-bucket',
        'dev/predictions-1.jsonl',
        Buffer.from(Array.from({ length: 120 }, (_, i) => line(i, 5)).join('\n') + '\n{"time":'),
      );
      fake.putObject(
        'logs-bucket',
        'dev/predictions-2.jsonl',
        Buffer.from(Array.from({ length: 80 }, (_, i) => line(120 + i, 5)).join('\n')),
      );
      fake.putObject('logs-bucket', 'dev/README.txt', Buffer.from('not a log'));
      const res = await cli('monitor', '--env', 'dev', '--logs', 'gs://logs-bucket/dev', '--json');
      expect(res.err).toBe('');
      const report = JSON.parse(res.out);
      expect(report.volume.recent).toBe(200);
      expect(report.status).toBe('alert');
      for (const ext of ['vl.json', 'svg', 'png']) {
        expect(
          (await readFile(path.join(r.dir, `out/monitor/dev/distributions.${ext}`))).length,
        ).toBeGreaterThan(100);
      }
      const bad = await cli('monitor', '--env', 'dev', '--logs', 'gs://Bad_Bucket!/x');
      expect(bad.code).not.toBe(0);
      expect(bad.err.split('\n')).toHaveLength(1);
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
      await fake.close();
    }
  });
});
