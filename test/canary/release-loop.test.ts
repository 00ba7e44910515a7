/**
 * The release loop end to end, as a team runs it: a real git repository, real models trained on
 * the demo corpus, one real prediction server per environment (the local endpoint) fed with
 * demo clips, and the CLI for everything else (promote, canary reconcile, rollback, history,
 * registry show). No test step merges anything by hand.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import type { FastifyInstance } from 'fastify';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { startServer } from '../../lib/serving/server.ts';
import { PredictionLog, predictionLogDir } from '../../lib/serving/logs.ts';
import { LocalEndpointSource } from '../../lib/serving/local-source.ts';
import { LocalEndpoint } from '../../lib/endpoints/local.ts';
import { GOOD, makeRegistryRepo, type RegistryRepo } from '../promotion/fixture.ts';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';
import { makeReleaseModels, type ReleaseModels } from './release-models.ts';

// Staging, where the bad candidates arrive, judges with the project's 30 requests a step;
// prod and dev take fewer steps and requests to keep the test short.
const MIN_REQUESTS: Record<string, number> = { dev: 10, staging: 30, prod: 20 };
const STEPS = [10, 25, 50, 100];
// The project's policies with room for a loaded test machine's latency, and minimum effects large
// enough that these request counts give the statistical tests their power.
const POLICIES: Record<string, string> = {
  dev: `branch: dev\nendpoint: { kind: local }\ncanary:\n  steps: [50, 100]\n  analysis: { max_error_rate: 0.05, max_p99_ms: 5000, min_requests: 10, min_effect: { class_share: 1, error_rate: 0.6, latency_auc: 0.95 } }\n`,
  staging: `branch: staging\nendpoint: { kind: local }\ngate:\n  thresholds:\n    - { metric: f1_macro, direction: higher, min: 0.5, tolerance: 0.02 }\ncanary:\n  steps: ${JSON.stringify(STEPS)}\n  analysis: { max_error_rate: 0.02, max_p99_ms: 5000, min_requests: ${MIN_REQUESTS.staging}, min_effect: { class_share: 0.5, error_rate: 0.3, latency_auc: 0.8 } }\n`,
  prod: `branch: prod\nendpoint: { kind: local }\ngate:\n  thresholds:\n    - { metric: f1_macro, direction: higher, min: 0.6, tolerance: 0.01 }\ncanary:\n  steps: [25, 50, 100]\n  analysis: { max_error_rate: 0.01, max_p99_ms: 5000, min_requests: ${MIN_REQUESTS.prod}, min_effect: { class_share: 0.6, error_rate: 0.3, latency_auc: 0.8 } }\n`,
};
const ENVS = ['dev', 'staging', 'prod'] as const;
type Env = (typeof ENVS)[number];

let work: string;
let models: ReleaseModels;
let clips: string[];

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-release-'));
  models = await makeReleaseModels(work);
  clips = models.clips.map((f) => fs.readFileSync(f).toString('base64'));
}, 240_000);
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

interface Served {
  source: LocalEndpointSource;
  log: PredictionLog;
  app: FastifyInstance;
  url: string;
}

let r: RegistryRepo;
let servers: Map<Env, Served>;
let clip = 0;
const TOKENS = ['GITHUB_TOKEN', 'GITHUB_API_URL', 'GITHUB_REPOSITORY', 'GH_TOKEN', 'LOCKSTEP_GITHUB_TOKEN'];
const savedEnv: Record<string, string | undefined> = {};

beforeEach(async () => {
  // The local loop talks to no GitHub, whatever the machine's environment holds.
  for (const k of TOKENS) {
    savedEnv[k] = process.env[k];
    delete process.env[k];
  }
  r = await makeRegistryRepo();
  for (const [env, text] of Object.entries(POLICIES))
    fs.writeFileSync(path.join(r.dir, 'promotion', `${env}.yaml`), text);
  await r.git.add('promotion');
  await r.git.commit('test policies');
  servers = new Map();
  for (const env of ENVS) {
    const source = new LocalEndpointSource(r.repo, env);
    const log = new PredictionLog(predictionLogDir(r.dir, env));
    const { app, url } = await startServer({ source, env, log, refreshMs: 0 });
    servers.set(env, { source, log, app, url });
  }
});
afterEach(async () => {
  for (const s of servers.values()) await s.app.close();
  await r.cleanup();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', r.dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

/** Sends `n` demo clips to `env`'s server (after it picked up the endpoint's latest state). */
async function drive(env: Env, n: number): Promise<void> {
  const s = servers.get(env)!;
  await s.source.refresh();
  for (let i = 0; i < n; i++) {
    const res = await fetch(s.url + '/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [{ audio: clips[clip++ % clips.length] }] }),
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  }
  s.log.flush();
}

async function describeEndpoint(env: Env) {
  return new LocalEndpoint(r.repo, env).describe();
}

/** The model serving 100% of `env`. */
async function servingHash(env: Env): Promise<string | undefined> {
  const d = await describeEndpoint(env);
  return d.deployedModels.find((m) => d.trafficSplit[m.id] === 100)?.model.hash;
}

interface Rollout {
  action: string;
  reason: string;
  /** Largest traffic share the candidate had while it was being judged. */
  maxPercent: number;
  git?: { kind: string };
}

/** Reconciles `env` and sends the traffic each step needs, until the canary settles. */
async function rollout(env: Env, candidate: string): Promise<Rollout> {
  let maxPercent = 0;
  for (let pass = 0; pass < 16; pass++) {
    const res = await cli('canary', 'reconcile', '--env', env, '--json');
    const result = JSON.parse(res.out);
    const d = await describeEndpoint(env);
    const mine = d.deployedModels.find((m) => m.model.hash === candidate);
    const percent = mine ? (d.trafficSplit[mine.id] ?? 0) : 0;
    if (['complete', 'rollback', 'deploy', 'none'].includes(result.action)) {
      expect(res.code, res.err).toBe(result.action === 'rollback' ? 1 : 0);
      return { action: result.action, reason: result.reason, maxPercent, git: result.git };
    }
    maxPercent = Math.max(maxPercent, percent);
    await drive(env, Math.ceil((MIN_REQUESTS[env] * 100) / percent) + 3);
  }
  throw new Error(`${env}: the canary of ${candidate.slice(0, 12)} did not settle`);
}

/** Branch, history, registry show and the endpoint all say `model` serves `env`. */
async function expectAgree(env: Env, model: string): Promise<void> {
  const shown = JSON.parse((await cli('registry', 'show', env, '--json')).out);
  expect(shown.model.hash, `${env}: branch`).toBe(model);
  expect(shown.serving[env], `${env}: registry show serving`).toBe(model);
  const hist = JSON.parse((await cli('history', env, '--json')).out);
  expect(hist.serving.model, `${env}: history serving`).toBe(model);
  expect(hist.changes.find((c: { current: boolean }) => c.current).model, `${env}: history current`).toBe(
    model,
  );
  expect(await servingHash(env), `${env}: endpoint`).toBe(model);
}

async function commitOnDev(dir: string, name: string) {
  await r.git.checkout('dev');
  return r.commitModel({ content: name, modelDir: dir, metrics: GOOD, message: `train ${name}` });
}

async function promote(env: Env): Promise<{ mode: string }> {
  const res = await cli('promote', env, '--local', '--json');
  expect(res.err, `promote ${env}`).toBe('');
  expect(res.code).toBe(0);
  return JSON.parse(res.out);
}

const EVIDENCE =
  /step 1\/4 at (10|25)%: agreement with stable \d+% \(\d+\/\d+ paired requests\) is significantly below the 70% required \(one-sided exact binomial test p=[\d.e-]+ < 0\.01\)/;

describe('release loop', () => {
  it('release loop: three promotions dev → staging → prod with rollbacks between, bad candidates stopped before 50%, no merge by hand', async () => {
    // Bootstrap: the stable model everywhere (first deploys take 100% at once).
    const stable = await commitOnDev(models.stable, 'stable');
    expect((await rollout('dev', stable.model.hash)).action).toBe('deploy');
    for (const env of ['staging', 'prod'] as const) {
      await promote(env);
      expect((await rollout(env, stable.model.hash)).action).toBe('deploy');
    }

    // Promotion 1: a good candidate canaries to 100% in every environment.
    const g1 = await commitOnDev(models.good[0], 'good-1');
    for (const env of ENVS) {
      if (env !== 'dev') await promote(env);
      const done = await rollout(env, g1.model.hash);
      expect(done.action, done.reason).toBe('complete');
      expect(done.reason).toMatch(/completed all \d canary steps; [0-9a-f]{12} serves 100%/);
      await expectAgree(env, g1.model.hash);
    }

    // Three bad candidates reach staging; each is rolled back before 50% and staging's branch
    // pins the good model again, so the next promotion needs no merge.
    for (const [name, dir] of [
      ['one-epoch', models.oneEpoch],
      ['shuffled-labels', models.shuffled],
      ['collapsed', models.collapsed],
    ] as const) {
      const bad = await commitOnDev(dir, name);
      await promote('staging');
      const res = await rollout('staging', bad.model.hash);
      expect(res.action, `${name}: ${res.reason}`).toBe('rollback');
      expect(res.maxPercent, name).toBeLessThan(50);
      expect(res.reason, name).toMatch(EVIDENCE);
      expect(res.git?.kind).toBe('local');
      await expectAgree('staging', g1.model.hash);
      const hist = JSON.parse((await cli('history', 'staging', '--json')).out);
      const failed = hist.records.filter(
        (x: { model: string; status: string }) =>
          x.model === bad.model.hash && x.status === 'canary_rolled_back',
      );
      expect(failed).toHaveLength(1);
      expect(failed[0].detail).toMatch(EVIDENCE);
    }

    // Promotion 2: a good candidate again, through a staging branch that holds three rollbacks.
    const g2 = await commitOnDev(models.good[1], 'good-2');
    expect((await promote('staging')).mode).toBe('take-upstream');
    expect((await rollout('staging', g2.model.hash)).action).toBe('complete');
    expect((await promote('prod')).mode).toBe('fast-forward');
    expect((await rollout('prod', g2.model.hash)).action).toBe('complete');
    await expectAgree('prod', g2.model.hash);

    // A rollback by hand is immediate: the previous model takes all traffic in one step.
    const back = await cli('rollback', 'prod', '--local');
    expect(back.code, back.err).toBe(0);
    const after = await describeEndpoint('prod');
    expect(after.deployedModels.map((d) => d.model.hash)).toEqual([g1.model.hash]);
    expect(Object.values(after.trafficSplit)).toEqual([100]);
    await expectAgree('prod', g1.model.hash);
    const steady = await cli('canary', 'reconcile', '--env', 'prod', '--json');
    expect(JSON.parse(steady.out).action).toMatch(/none|cleanup/);

    // Promotion 3: after the rollback, the next promotion into prod neither fails nor conflicts.
    const g3 = await commitOnDev(models.good[2], 'good-3');
    for (const env of ENVS) {
      if (env !== 'dev') await promote(env);
      expect((await rollout(env, g3.model.hash)).action).toBe('complete');
      await expectAgree(env, g3.model.hash);
    }

    // Nothing was merged back: dev holds only its own commits, and each canary event is on record.
    expect(await r.git.raw(['rev-list', '--merges', 'dev'])).toBe('');
    const prodHist = JSON.parse((await cli('history', 'prod', '--json')).out);
    const statuses = prodHist.records.map((x: { status: string }) => x.status);
    expect(statuses).toEqual(
      expect.arrayContaining(['canary_started', 'canary_step', 'success', 'rolled_back']),
    );
    const shown = await cli('registry', 'show', 'staging');
    expect(shown.out).toMatch(/serving: +dev, staging, prod/);
    expect(shown.out).toMatch(/completed all 3 canary steps/);
    expect(shown.out).toMatch(/events:\n(.*\n)*.*staging +canary_started/);
  }, 600_000);
});

describe('release loop through GitHub', () => {
  let gh: FakeGitHub;
  let origin: string;

  beforeEach(async () => {
    gh = await startFakeGitHub();
    origin = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-origin-'));
    await simpleGit(origin).raw(['init', '-q', '--bare']);
    await r.git.addRemote('origin', origin);
    process.env.GITHUB_TOKEN = 'ghs_fake_installation_token';
    process.env.GITHUB_API_URL = gh.url;
    process.env.GITHUB_REPOSITORY = `${gh.state.owner}/${gh.state.repo}`;
  });
  afterEach(async () => {
    await gh.close();
    fs.rmSync(origin, { recursive: true, force: true });
  });

  /** GitHub merges the open pull request (a merge commit, as the merge button does); it must not conflict. */
  async function mergePullRequest(base: Env): Promise<void> {
    const pr = gh.state.pulls.find((p) => p.state === 'open' && p.base.ref === base);
    expect(pr, `an open pull request into ${base}`).toBeDefined();
    await r.git.fetch('origin');
    const head =
      (await r.git.raw(['rev-parse', `refs/remotes/origin/${pr!.head.ref}`]).catch(() => '')).trim() ||
      (await r.git.raw(['rev-parse', `refs/heads/${pr!.head.ref}`])).trim();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-merge-'));
    try {
      await r.git.raw(['worktree', 'add', '--quiet', dir, base]);
      await simpleGit(dir).raw(['merge', '--no-ff', '-m', `Merge pull request #${pr!.number}`, head]);
    } finally {
      await r.git.raw(['worktree', 'remove', '--force', dir]);
    }
    pr!.state = 'closed';
    pr!.merged = true;
  }

  it('release loop through GitHub: promotion and revert pull requests merge cleanly, deployment statuses tell the story', async () => {
    const stable = await commitOnDev(models.stable, 'stable');
    await r.git.raw(['branch', 'staging']);
    await r.git.raw(['branch', 'prod']);
    for (const env of ENVS) expect((await rollout(env, stable.model.hash)).action).toBe('deploy');

    const g1 = await commitOnDev(models.good[0], 'good-1');
    expect((await rollout('dev', g1.model.hash)).action).toBe('complete');
    for (const env of ['staging', 'prod'] as const) {
      const opened = await cli('promote', env);
      expect(opened.out, opened.err).toMatch(/opened pull request #\d+/);
      await mergePullRequest(env);
      expect((await rollout(env, g1.model.hash)).action).toBe('complete');
    }

    // A bad candidate merged into staging: traffic goes back at once, and a revert pull request
    // makes the branch follow. Until it merges, "current" is what serves, not what the branch pins.
    const bad = await commitOnDev(models.oneEpoch, 'one-epoch');
    const opened = await cli('promote', 'staging');
    expect(opened.out).toMatch(/opened pull request/);
    expect(gh.state.pulls.at(-1)!.head.ref).toBe('promote/staging');
    await mergePullRequest('staging');
    const res = await rollout('staging', bad.model.hash);
    expect(res.action).toBe('rollback');
    expect(res.maxPercent).toBeLessThan(50);
    expect(res.reason).toMatch(EVIDENCE);
    expect(res.git?.kind).toBe('pull-request');
    const revert = gh.state.pulls.at(-1)!;
    expect(revert.head.ref).toBe(`rollback/staging-${g1.model.hash.slice(0, 12)}`);
    expect(revert.body).toMatch(/Why: .*agreement with stable/);
    expect(await servingHash('staging')).toBe(g1.model.hash);
    const pending = JSON.parse((await cli('history', 'staging', '--json')).out);
    expect(pending.changes[0].model).toBe(bad.model.hash);
    expect(pending.changes.find((c: { current: boolean }) => c.current).model).toBe(g1.model.hash);
    // Reconciling again keeps the stable model and updates (does not duplicate) the revert PR.
    const again = await cli('canary', 'reconcile', '--env', 'staging', '--json');
    expect(JSON.parse(again.out).git.pullRequest.created).toBe(false);
    expect(await servingHash('staging')).toBe(g1.model.hash);
    await mergePullRequest('staging');
    expect(JSON.parse((await cli('canary', 'reconcile', '--env', 'staging', '--json')).out).action).toBe(
      'cleanup',
    );
    await expectAgree('staging', g1.model.hash);

    // The next promotion opens (and on a re-run updates) its pull request, which merges cleanly.
    const g2 = await commitOnDev(models.good[1], 'good-2');
    expect((await cli('promote', 'staging')).out).toMatch(/opened pull request/);
    expect((await cli('promote', 'staging')).out).toMatch(/updated pull request/);
    await mergePullRequest('staging');
    expect((await rollout('staging', g2.model.hash)).action).toBe('complete');
    await expectAgree('staging', g2.model.hash);

    // GitHub deployment statuses: the bad candidate failed with the evidence, the good ones succeeded.
    const byModel = (hash: string) =>
      gh.state.deployments.filter(
        (d) => (d.payload as { model?: string }).model === hash && d.environment === 'staging',
      );
    const failed = byModel(bad.model.hash)[0];
    expect(failed.statuses.at(-1)).toMatchObject({ state: 'failure' });
    expect(failed.statuses.at(-1)!.description).toMatch(/^canary_rolled_back: step 1\/4/);
    expect(byModel(g2.model.hash)[0].statuses.map((s) => s.state)).toEqual(
      expect.arrayContaining(['in_progress', 'success']),
    );
    const hist = await cli('history', 'staging');
    expect(hist.out).toMatch(/GitHub deployments:/);
    const histJson = JSON.parse((await cli('history', 'staging', '--json')).out);
    const shownBad = histJson.github.find((d: { id: number }) => d.id === failed.id);
    expect(shownBad.statuses.map((x: { state: string }) => x.state).reverse()).toEqual(
      failed.statuses.map((x) => x.state),
    );
  }, 600_000);
});
