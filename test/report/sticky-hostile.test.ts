/**
 * The sticky comment writer against a hostile GitHub: a person's comment quoting the marker,
 * server errors, a rate limit that answers 403, bodies past the size limit.
 */
import { getOctokit } from '@actions/github';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_MARKER, renderReport } from '../../lib/report/render.ts';
import { isPermissionDenied, upsertStickyComment, upsertStickySection } from '../../lib/report/sticky.ts';
import { startFakeGitHub, type FakeComment, type FakeGitHub } from '../support/fake-github.ts';

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await startFakeGitHub();
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => {
  fake.reset();
  while (fake.routes.length && (fake.routes[0] as { hostile?: boolean }).hostile) fake.routes.shift();
});

const target = { owner: 'Codertocat', repo: 'Hello-World', issueNumber: 12 };
const octokit = () => getOctokit('ghs_fake', { baseUrl: fake.url });
const comments = () => fake.state.comments.get(target.issueNumber) ?? [];

function seed(body: string, login = 'octocat'): FakeComment {
  const id = fake.state.nextId++;
  const c = {
    id,
    body,
    user: { login, type: 'User' },
    html_url: `${fake.url}/Codertocat/Hello-World/pull/${target.issueNumber}#issuecomment-${id}`,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  };
  fake.state.comments.set(target.issueNumber, [...comments(), c]);
  return c;
}

function answer(method: 'GET' | 'POST' | 'PATCH', path: string, status: number, body: unknown, headers = {}) {
  fake.routes.unshift(
    Object.assign({ method, path, handle: () => ({ status, body, headers }) }, { hostile: true }),
  );
}

describe('sticky comment and other people', () => {
  it("a person's comment quoting the marker is left alone: the report goes in a comment of its own", async () => {
    const said = `Why does the bot write \`${REPORT_MARKER}\` at the top of its comment?`;
    const quote = seed(said);
    const res = await upsertStickyComment(octokit(), target, renderReport({ paramsDiff: '_No changes._' }));
    expect(comments().find((c) => c.id === quote.id)!.body).toBe(said);
    expect(res.action).toBe('created');
    expect(res.id).not.toBe(quote.id);
  });
});

describe('sticky comment and GitHub errors', () => {
  it('a 502 from GitHub fails with one line saying what GitHub answered', async () => {
    answer(
      'GET',
      '/repos/:owner/:repo/issues/:number/comments',
      502,
      '<html>\n<body>Bad gateway</body>\n</html>',
    );
    const err = await upsertStickySection(octokit(), target, 'experiments', 'E').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    console.log('502:', JSON.stringify((err as Error).message));
    expect((err as Error).message).toMatch(/^PR #12 comment: /);
    expect((err as Error).message).not.toContain('\n');
  });

  it('a 401 fails with one line naming the token', async () => {
    answer('GET', '/repos/:owner/:repo/issues/:number/comments', 401, {
      message: 'Bad credentials',
      documentation_url: 'https://docs.github.com/rest',
    });
    const err = await upsertStickySection(octokit(), target, 'experiments', 'E').catch((e: Error) => e);
    console.log('401:', JSON.stringify((err as Error).message));
    expect((err as Error).message).toMatch(/^PR #12 comment: /);
    expect((err as Error).message).not.toContain('\n');
  });

  it('a rate limit answering 403 is not taken for a read-only token', async () => {
    answer('POST', '/repos/:owner/:repo/issues/:number/comments', 403, {
      message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
    });
    const err = await upsertStickySection(octokit(), target, 'experiments', 'E').catch((e: Error) => e);
    console.log('rl:', JSON.stringify((err as Error).message));
    expect((err as Error).message).toMatch(/rate limit/);
    expect(isPermissionDenied(err)).toBe(false);
  });

  it('a rate limit answering 429 fails with one line saying to wait', async () => {
    answer(
      'POST',
      '/repos/:owner/:repo/issues/:number/comments',
      429,
      {
        message: 'You have exceeded a secondary rate limit.',
      },
      { 'retry-after': '60' },
    );
    const err = await upsertStickySection(octokit(), target, 'experiments', 'E').catch((e: Error) => e);
    console.log('429:', JSON.stringify((err as Error).message));
    expect((err as Error).message).toMatch(/^PR #12 comment: .*rate limit/);
  });
});

describe('sticky comment size', () => {
  it('a report body past 65,536 characters is cut to fit, not refused', async () => {
    const big = `${REPORT_MARKER}\n## lockstep report\n\n${Array.from({ length: 2000 }, (_, i) => `para ${i} ${'😀'.repeat(40)}`).join('\n\n')}`;
    const res = await upsertStickyComment(octokit(), target, big);
    expect(res.action).toBe('created');
  });
  it('a section past the limit beside a huge report is cut, not refused', async () => {
    seed(`${REPORT_MARKER}\n## r\n\n${'x'.repeat(65_000)}`, 'github-actions[bot]');
    const res = await upsertStickySection(octokit(), target, 'experiments', 'y'.repeat(70_000));
    expect(res.action).toBe('updated');
  });
  it('a string body that is one line past the limit is cut, not refused', async () => {
    const res = await upsertStickyComment(octokit(), target, `${REPORT_MARKER}\n${'z'.repeat(70_000)}`);
    expect(res.action).toBe('created');
    expect([...comments()[0]!.body].length).toBeLessThanOrEqual(65_536);
  });
});

describe('sticky comment writer killed while racing', () => {
  it('a creator killed between creating and deleting its comment: the others still end in one comment holding every part', async () => {
    const n = 4;
    let listed = 0;
    let allListed!: () => void;
    const listedGate = new Promise<void>((r) => (allListed = r));
    const createdIn: Promise<void>[] = [];
    const created: (() => void)[] = [];
    for (let i = 0; i < n; i++) createdIn.push(new Promise<void>((r) => created.push(r)));
    const never = new Promise<never>(() => undefined);
    const clients = Array.from({ length: n }, (_, i) => {
      const real = octokit().rest.issues;
      let lists = 0;
      let dead = false;
      const gone = <T>(f: () => Promise<T>) => (dead ? never : f());
      return {
        rest: {
          issues: {
            listComments: (p: Parameters<typeof real.listComments>[0]) =>
              gone(async () => {
                lists++;
                if (lists === 2) await Promise.all(createdIn);
                const r = await real.listComments(p);
                if (lists === 1) {
                  if (++listed === n) allListed();
                  await listedGate;
                }
                return r;
              }),
            // One after the other, so writer i's comment is the i-th oldest; writer 1 is killed
            // as soon as its comment is created (the job's runner went away).
            createComment: (p: Parameters<typeof real.createComment>[0]) =>
              gone(async () => {
                if (i > 0) await createdIn[i - 1];
                const r = await real.createComment(p);
                created[i]!();
                if (i === 1) dead = true;
                return r;
              }),
            updateComment: (p: Parameters<typeof real.updateComment>[0]) => gone(() => real.updateComment(p)),
            deleteComment: (p: Parameters<typeof real.deleteComment>[0]) => gone(() => real.deleteComment(p)),
          },
        },
      };
    });
    void upsertStickySection(clients[1]!, target, 'experiments', 'EXPERIMENTS');
    const results = await Promise.all([
      upsertStickyComment(clients[0]!, target, renderReport({ paramsDiff: '_Report._' })),
      upsertStickySection(clients[2]!, target, 'sweeps', 'SWEEPS'),
      upsertStickySection(clients[3]!, target, 'notes', 'NOTES'),
    ]);
    const marked = comments().filter((c) => c.body.startsWith(REPORT_MARKER));
    expect(marked).toHaveLength(1);
    expect(marked[0]!.body).toContain('_Report._');
    expect(marked[0]!.body).toContain('SWEEPS');
    expect(marked[0]!.body).toContain('NOTES');
    expect(results.map((r) => r.id)).toEqual(results.map(() => marked[0]!.id));
  }, 60_000);
});
