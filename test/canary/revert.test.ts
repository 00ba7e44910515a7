import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getOctokit } from '@actions/github';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { LocalEndpoint } from '../../lib/endpoints/local.ts';
import { reconcileCanary } from '../../lib/canary/reconcile.ts';
import { findOpenRevert } from '../../lib/canary/revert.ts';
import { rollbackBody, ROLLBACK_LABEL } from '../../lib/promotion/rollback.ts';
import { addLabels, upsertPullRequest } from '../../lib/promotion/github.ts';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';
import { commitFixtureModel, fixtureLoader } from '../support/fixture-model.ts';

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
});
