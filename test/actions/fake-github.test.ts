/**
 * The fake GitHub API answers Octokit (from @actions/github, as the actions use it) for every
 * route others rely on, records requests, and refuses writes like a fork's read-only token.
 */
import { getOctokit } from '@actions/github';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';

let fake: FakeGitHub;
let octokit: ReturnType<typeof getOctokit>;
const repo = { owner: 'Codertocat', repo: 'Hello-World' };

beforeAll(async () => {
  fake = await startFakeGitHub();
  octokit = getOctokit('ghs_fake', { baseUrl: fake.url });
});
afterAll(() => fake.close());

describe('fake GitHub', () => {
  it('fake GitHub serves repos get with the default branch', async () => {
    const { data } = await octokit.rest.repos.get(repo);
    expect(data).toMatchObject({ full_name: 'Codertocat/Hello-World', default_branch: 'main' });
  });

  it('fake GitHub creates, reads and moves git refs', async () => {
    await octokit.rest.git.createRef({ ...repo, ref: 'refs/heads/promote/staging', sha: 'a'.repeat(40) });
    const got = await octokit.rest.git.getRef({ ...repo, ref: 'heads/promote/staging' });
    expect(got.data.object.sha).toBe('a'.repeat(40));
    await octokit.rest.git.updateRef({ ...repo, ref: 'heads/promote/staging', sha: 'b'.repeat(40) });
    expect(fake.state.refs.get('heads/promote/staging')).toBe('b'.repeat(40));
    await expect(octokit.rest.git.getRef({ ...repo, ref: 'heads/missing' })).rejects.toMatchObject({
      status: 404,
    });
  });

  it('fake GitHub opens, lists and gets pull requests', async () => {
    const { data: pr } = await octokit.rest.pulls.create({
      ...repo,
      head: 'promote/staging',
      base: 'staging',
      title: 'Promote',
    });
    const listed = await octokit.rest.pulls.list({
      ...repo,
      head: 'Codertocat:promote/staging',
      state: 'open',
    });
    expect(listed.data.map((p) => p.number)).toEqual([pr.number]);
    const got = await octokit.rest.pulls.get({ ...repo, pull_number: pr.number });
    expect(got.data).toMatchObject({ title: 'Promote', base: { ref: 'staging' } });
  });

  it('fake GitHub pages issue comments the way paginate expects', async () => {
    for (let i = 0; i < 105; i++)
      await octokit.rest.issues.createComment({ ...repo, issue_number: 5, body: `c${i}` });
    const all = await octokit.paginate(octokit.rest.issues.listComments, {
      ...repo,
      issue_number: 5,
      per_page: 50,
    });
    expect(all.map((c) => c.body)).toEqual(Array.from({ length: 105 }, (_, i) => `c${i}`));
  });

  it('fake GitHub pages like GitHub: 30 by default, at most 100, a link header with prev/next/last/first', async () => {
    for (let i = 0; i < 250; i++)
      await octokit.rest.issues.createComment({ ...repo, issue_number: 6, body: `c${i}` });
    const path = `${fake.url}/repos/Codertocat/Hello-World/issues/6/comments`;
    const first = await octokit.rest.issues.listComments({ ...repo, issue_number: 6 });
    expect(first.data).toHaveLength(30);
    expect(first.headers.link).toBe(
      `<${path}?per_page=30&page=2>; rel="next", <${path}?per_page=30&page=9>; rel="last"`,
    );
    const big = await octokit.rest.issues.listComments({ ...repo, issue_number: 6, per_page: 500 });
    expect(big.data).toHaveLength(100);
    expect(big.headers.link).toBe(
      `<${path}?per_page=100&page=2>; rel="next", <${path}?per_page=100&page=3>; rel="last"`,
    );
    const middle = await octokit.rest.issues.listComments({
      ...repo,
      issue_number: 6,
      per_page: 100,
      page: 2,
    });
    expect(middle.data.map((c) => c.body)).toEqual(Array.from({ length: 100 }, (_, i) => `c${100 + i}`));
    expect(middle.headers.link).toBe(
      [
        `<${path}?per_page=100&page=1>; rel="prev"`,
        `<${path}?per_page=100&page=3>; rel="next"`,
        `<${path}?per_page=100&page=3>; rel="last"`,
        `<${path}?per_page=100&page=1>; rel="first"`,
      ].join(', '),
    );
    const last = await octokit.rest.issues.listComments({ ...repo, issue_number: 6, per_page: 100, page: 3 });
    expect(last.data).toHaveLength(50);
    expect(last.headers.link).toBe(
      `<${path}?per_page=100&page=2>; rel="prev", <${path}?per_page=100&page=1>; rel="first"`,
    );
    // One page: no link header at all.
    await octokit.rest.issues.createComment({ ...repo, issue_number: 8, body: 'only' });
    expect(
      (await octokit.rest.issues.listComments({ ...repo, issue_number: 8 })).headers.link,
    ).toBeUndefined();
    // Other query parameters stay in the links, as GitHub keeps them.
    for (const n of [1, 2, 3])
      fake.state.pulls.push({
        number: 900 + n,
        title: `p${n}`,
        body: '',
        state: 'closed',
        head: { ref: `h${n}`, sha: '' },
        base: { ref: 'main', sha: '' },
        html_url: '',
        merged: false,
        labels: [],
      });
    const pulls = await octokit.rest.pulls.list({ ...repo, state: 'closed', per_page: 1 });
    const pullsPath = `${fake.url}/repos/Codertocat/Hello-World/pulls`;
    expect(pulls.data.map((p) => p.number)).toEqual([901]);
    expect(pulls.headers.link).toBe(
      `<${pullsPath}?state=closed&per_page=1&page=2>; rel="next", <${pullsPath}?state=closed&per_page=1&page=3>; rel="last"`,
    );
  });

  it("fake GitHub answers a missing comment 404 with GitHub's body, and a delete 204", async () => {
    const { data } = await octokit.rest.issues.createComment({ ...repo, issue_number: 10, body: 'x' });
    const del = await octokit.rest.issues.deleteComment({ ...repo, comment_id: data.id });
    expect(del.status).toBe(204);
    for (const call of [
      () => octokit.rest.issues.updateComment({ ...repo, comment_id: data.id, body: 'y' }),
      () => octokit.rest.issues.deleteComment({ ...repo, comment_id: data.id }),
    ]) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e as { status: number; response: { data: unknown } },
      );
      expect(err?.status).toBe(404);
      expect(err?.response.data).toMatchObject({
        message: 'Not Found',
        documentation_url: expect.stringMatching(/^https:\/\/docs\.github\.com\/rest\/issues\/comments#/),
      });
    }
  });

  it('fake GitHub records deployments and their statuses', async () => {
    const { data } = await octokit.rest.repos.createDeployment({
      ...repo,
      ref: 'prod',
      environment: 'prod',
      required_contexts: [],
    });
    const id = (data as { id: number }).id;
    await octokit.rest.repos.createDeploymentStatus({ ...repo, deployment_id: id, state: 'success' });
    const statuses = await octokit.rest.repos.listDeploymentStatuses({ ...repo, deployment_id: id });
    expect(statuses.data.map((s) => s.state)).toEqual(['success']);
    const list = await octokit.rest.repos.listDeployments({ ...repo, environment: 'prod' });
    expect(list.data.map((d) => d.id)).toContain(id);
  });

  it('fake GitHub answers 403 to writes when read-only and records the request', async () => {
    fake.state.readOnly = true;
    try {
      await expect(
        octokit.rest.issues.createComment({ ...repo, issue_number: 9, body: 'x' }),
      ).rejects.toMatchObject({
        status: 403,
      });
      // Reads still work with a read-only token.
      await expect(octokit.rest.repos.get(repo)).resolves.toBeDefined();
    } finally {
      fake.state.readOnly = false;
    }
    expect(fake.requests.at(-2)).toMatchObject({
      method: 'POST',
      path: '/repos/Codertocat/Hello-World/issues/9/comments',
      status: 403,
    });
  });

  it('fake GitHub lets a test add or override routes', async () => {
    fake.routes.unshift({
      method: 'GET',
      path: '/repos/:owner/:repo',
      handle: () => ({ status: 200, body: { default_branch: 'trunk' } }),
    });
    try {
      expect((await octokit.rest.repos.get(repo)).data.default_branch).toBe('trunk');
    } finally {
      fake.routes.shift();
    }
  });
});
