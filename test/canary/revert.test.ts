import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getOctokit } from '@actions/github';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { LocalEndpoint } from '../../lib/endpoints/local.ts';
import { reconcileCanary } from '../../lib/canary/reconcile.ts';
import { findOpenRevert, revertBranch } from '../../lib/canary/revert.ts';
import { rollbackBody, ROLLBACK_LABEL } from '../../lib/promotion/rollback.ts';
import { addLabels, closePullRequest, upsertPullRequest } from '../../lib/promotion/github.ts';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';
import { commitFixtureModel, fixtureLoader } from '../support/fixture-model.ts';
import { GOOD, makeRegistryRepo } from '../promotion/fixture.ts';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { simpleGit } from 'simple-git';

let tmp: string;
let repo: Repo;
let gh: FakeGitHub;

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-revert-'));
  repo = repoAt(tmp);
  gh = await startFakeGitHub();
});
afterEach(async () => {
  await gh.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ANALYSIS = { max_error_rate: 0.05, max_p99_ms: 500, max_divergence: 0.3, min_requests: 8 };

describe('canary revert', () => {
  it('canary revert: an open labelled revert pull request is found by the model it takes off, and reconcile holds on it', async () => {
    const client = getOctokit('ghs_fake', { baseUrl: gh.url });
    const slug = { owner: gh.state.owner, repo: gh.state.repo };
    const plan = {
      env: 'staging',
      branch: 'staging',
      head: 'c'.repeat(40),
      from: { commit: 'a'.repeat(40), model: 'b'.repeat(64) },
      to: { commit: 'd'.repeat(40), model: 'e'.repeat(64) },
    };
    const body = rollbackBody(plan, 'step 1/4 at 10%: class distribution differs', ['failed: x']);
    expect(body).toMatch(/Why: step 1\/4 at 10%: class distribution differs/);
    expect(body).toMatch(/Evidence:\n- failed: x/);
    const pr = await upsertPullRequest(client, slug, {
      head: `rollback/staging-${'e'.repeat(12)}`,
      base: 'staging',
      title: 't',
      body,
    });
    await addLabels(client, slug, pr.number, [ROLLBACK_LABEL]);
    expect(gh.state.pulls[0].labels).toEqual([{ name: 'lockstep:rollback' }]);
    const gitHub = { client, slug };
    expect(await findOpenRevert(gitHub, 'staging', 'staging', 'b'.repeat(64))).toMatchObject({
      number: pr.number,
      to: 'e'.repeat(64),
      head: 'c'.repeat(40),
    });
    expect(await findOpenRevert(gitHub, 'staging', 'staging', 'f'.repeat(64))).toBeUndefined();
    gh.state.pulls[0].state = 'closed';
    expect(await findOpenRevert(gitHub, 'staging', 'staging', 'b'.repeat(64))).toBeUndefined();

    // Reconcile with the reverted model still pinned: it holds on the restored one, even when the
    // endpoint's own status was lost and the bad model still had traffic.
    const endpoint = new LocalEndpoint(repo, 'staging', { loader: fixtureLoader });
    const good = await commitFixtureModel(repo, { tag: 'good' });
    const bad = await commitFixtureModel(repo, { tag: 'bad', shift: 3 });
    await endpoint.deploy(good, 100);
    await endpoint.deploy(bad, 25);
    const opts = {
      endpoint,
      desired: bad,
      steps: [25, 50, 100],
      analysis: ANALYSIS,
      readLogs: () => [],
      revertPending: { number: 7, url: 'u', from: bad.hash, to: good.hash },
    };
    const held = await reconcileCanary(opts);
    expect(held).toMatchObject({ action: 'hold', failed: false });
    expect(held.reason).toMatch(
      /^holding: revert pull request #7 pins [0-9a-f]{12} again and is not merged yet; [0-9a-f]{12} is not deployed again/,
    );
    expect((await endpoint.describe()).trafficSplit).toEqual({ '1': 100, '2': 0 });
    const again = await reconcileCanary(opts);
    expect(again).toMatchObject({ action: 'hold', changed: false, plan: [] });
  });

  it('canary revert keeps exactly one revert pull request per environment when the model to restore changes', async () => {
    const tokens = [
      'GITHUB_TOKEN',
      'GITHUB_API_URL',
      'GITHUB_REPOSITORY',
      'GH_TOKEN',
      'LOCKSTEP_GITHUB_TOKEN',
    ];
    const saved = tokens.map((k) => [k, process.env[k]] as const);
    for (const k of tokens) delete process.env[k];
    const r = await makeRegistryRepo();
    const origin = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-origin-'));
    try {
      await simpleGit(origin).raw(['init', '-q', '--bare']);
      await r.git.addRemote('origin', origin);
      const promote = async () => {
        const code = await main(['-C', r.dir, 'promote', 'staging', '--local'], memoryOutput());
        expect(code).toBe(0);
      };
      const v1 = await r.commitModel({ content: 'v1', metrics: GOOD });
      await promote();
      const v2 = await r.commitModel({ content: 'v2', metrics: GOOD });
      await promote();
      const v3 = await r.commitModel({ content: 'v3', metrics: GOOD });
      await promote();
      const github = {
        client: getOctokit('ghs_fake', { baseUrl: gh.url }),
        slug: { owner: gh.state.owner, repo: gh.state.repo },
      };
      const revert = (stable: string) =>
        revertBranch(r.repo, 'staging', {
          failed: v3.model.hash,
          stable,
          reason: 'step 1/4: rolling back',
          github,
        });
      const openReverts = () => gh.state.pulls.filter((p) => p.state === 'open');

      const first = await revert(v2.model.hash);
      expect(first).toMatchObject({ kind: 'pull-request', pullRequest: { created: true } });
      // The stable model changed while that pull request is open: the same one now restores v1.
      const second = await revert(v1.model.hash);
      expect(second).toMatchObject({ kind: 'pull-request', pullRequest: { created: false } });
      expect(openReverts()).toHaveLength(1);
      const pr = openReverts()[0];
      expect(pr.number).toBe((first as { pullRequest: { number: number } }).pullRequest.number);
      expect(pr.labels).toEqual([{ name: ROLLBACK_LABEL }]);
      expect(pr.body).toContain(`to=${v1.model.hash}`);
      const pushed = await simpleGit(origin).raw(['show', `${pr.head.ref}:artifacts.lock.yaml`]);
      expect(pushed).toContain(v1.model.hash);
      expect(pushed).not.toContain(v2.model.hash);
      // Asked again with nothing changed: left as it is.
      expect((await revert(v1.model.hash)).kind).toBe('pending');

      // A second open revert pull request of the environment (as an older version could leave)
      // is closed by the next update; the oldest one stays.
      const dup = await upsertPullRequest(github.client, github.slug, {
        head: 'rollback/staging-older',
        base: 'staging',
        title: 'duplicate',
        body: pr.body.replace(`to=${v1.model.hash}`, `to=${v2.model.hash}`),
      });
      await addLabels(github.client, github.slug, dup.number, [ROLLBACK_LABEL]);
      expect(openReverts()).toHaveLength(2);
      await revert(v2.model.hash);
      expect(openReverts().map((p) => p.number)).toEqual([pr.number]);
      expect(openReverts()[0].body).toContain(`to=${v2.model.hash}`);

      // Closed by a human, not merged: the next rollback opens a new one (the closed one stays closed).
      await closePullRequest(github.client, github.slug, pr.number);
      expect(openReverts()).toHaveLength(0);
      const again = await revert(v2.model.hash);
      expect(again).toMatchObject({ kind: 'pull-request', pullRequest: { created: true } });
      expect(openReverts()).toHaveLength(1);
      expect(openReverts()[0].number).not.toBe(pr.number);
      expect(openReverts()[0].body).toContain(`to=${v2.model.hash}`);
      expect(gh.state.pulls.find((p) => p.number === pr.number)?.state).toBe('closed');
    } finally {
      fs.rmSync(origin, { recursive: true, force: true });
      await r.cleanup();
      for (const [k, v] of saved) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
