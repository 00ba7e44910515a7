/**
 * The sticky comment writer against the fake GitHub API through the real Octokit client (as the
 * report action holds it, and as the CLI's request-style client over it): the marked comment is
 * found past GitHub's 100-comment pages by following the `link` header; a comment deleted between
 * reading and writing it (404) is read again and written, a few times at most; writers racing to
 * create the comment end in one holding every part; a token that cannot write (403) stops at once
 * with one line that says how to grant the permission.
 */
import { getOctokit } from '@actions/github';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_MARKER, renderReport } from '../../lib/report/render.ts';
import { findSection } from '../../lib/report/sections.ts';
import {
  isPermissionDenied,
  issueCommentsClient,
  upsertStickyComment,
  upsertStickySection,
  type IssueCommentsClient,
} from '../../lib/report/sticky.ts';
import { startFakeGitHub, type FakeComment, type FakeGitHub } from '../support/fake-github.ts';

let fake: FakeGitHub;
beforeAll(async () => {
  fake = await startFakeGitHub();
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => fake.reset());

const target = { owner: 'Codertocat', repo: 'Hello-World', issueNumber: 12 };
const octokit = () => getOctokit('ghs_fake', { baseUrl: fake.url });
/** The two clients the writer is handed: Octokit itself (the action), its `request` (the CLI). */
const CLIENTS: [string, () => IssueCommentsClient][] = [
  ['octokit', () => octokit()],
  ['request client', () => issueCommentsClient(octokit())],
];
const comments = () => fake.state.comments.get(target.issueNumber) ?? [];
const marked = () => comments().filter((c) => c.body.includes(REPORT_MARKER));
const commentsPath = `/repos/Codertocat/Hello-World/issues/${target.issueNumber}/comments`;
const lists = () => fake.requests.filter((r) => r.method === 'GET' && r.path === commentsPath);

/** Puts comments with `bodies` on the PR, oldest first, as other people wrote them. */
function seed(bodies: string[]): FakeComment[] {
  const list = bodies.map((body) => {
    const id = fake.state.nextId++;
    return {
      id,
      body,
      user: { login: 'octocat', type: 'User' },
      html_url: `${fake.url}/Codertocat/Hello-World/pull/${target.issueNumber}#issuecomment-${id}`,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z',
    };
  });
  fake.state.comments.set(target.issueNumber, [...comments(), ...list]);
  return list;
}

describe('sticky comment pages', () => {
  it.each(CLIENTS)(
    'sticky comment pages (%s): the marked comment past 5,000 others is found by following the link header, not duplicated',
    async (_, client) => {
      const before = seed(Array.from({ length: 5_050 }, (_, i) => `comment ${i}`));
      const [ours] = seed([`${REPORT_MARKER}\nold report`]);
      seed(Array.from({ length: 120 }, (_, i) => `later ${i}`));
      const res = await upsertStickySection(client(), target, 'experiments', 'EXPERIMENTS');
      expect(res).toMatchObject({ action: 'updated', id: ours!.id });
      expect(marked()).toHaveLength(1);
      expect(findSection(marked()[0]!.body, 'experiments')).toContain('EXPERIMENTS');
      expect(marked()[0]!.body).toContain('old report');
      expect(comments()).toHaveLength(before.length + 121);
      // Pages of 100 (GitHub's most), up to the one holding the comment: 5,051st is on page 51.
      expect(lists().map((r) => [r.query.get('per_page'), r.query.get('page')])).toEqual(
        Array.from({ length: 51 }, (_, i) => ['100', String(i + 1)]),
      );
    },
  );

  it('sticky comment pages: the last page ends the search (no link rel="next"), then the comment is created', async () => {
    seed(Array.from({ length: 250 }, (_, i) => `comment ${i}`));
    const res = await upsertStickyComment(octokit(), target, renderReport({ paramsDiff: '_No changes._' }));
    expect(res.action).toBe('created');
    expect(marked()).toHaveLength(1);
    // Pages 1-3 before creating, pages 1-3 again to see which marked comment is the oldest.
    expect(lists().map((r) => r.query.get('page'))).toEqual(['1', '2', '3', '1', '2', '3']);
  });
});

/** A client over Octokit whose `issues` calls `hook` may replace (the real call is `real`). */
function hooked(
  hooks: Partial<{
    [K in keyof IssueCommentsClient['rest']['issues']]: (
      real: IssueCommentsClient['rest']['issues'][K],
      ...args: Parameters<IssueCommentsClient['rest']['issues'][K]>
    ) => ReturnType<IssueCommentsClient['rest']['issues'][K]>;
  }>,
): IssueCommentsClient {
  const real: IssueCommentsClient['rest']['issues'] = octokit().rest.issues;
  const issues = { ...real };
  for (const [name, hook] of Object.entries(hooks)) {
    const call = real[name as keyof typeof real] as (...a: unknown[]) => Promise<unknown>;
    (issues as Record<string, unknown>)[name] = (...args: unknown[]) =>
      (hook as (...a: unknown[]) => Promise<unknown>)(call, ...args);
  }
  return { rest: { issues } };
}

/** Takes comment `id` off the PR, as a person deleting it on github.com does. */
function deleteByHand(id: number): void {
  const list = comments();
  const i = list.findIndex((c) => c.id === id);
  if (i >= 0) list.splice(i, 1);
}

const writes = (method: string) =>
  fake.requests.filter((r) => r.method === method && r.path.includes('/comments'));

describe('sticky comment deleted while written', () => {
  it('sticky comment deleted between our list and our update (404): read again and written into one new comment', async () => {
    const [old] = seed([`${REPORT_MARKER}\nold report`]);
    let once = true;
    const client = hooked({
      updateComment: (real, p) => {
        if (once) deleteByHand(old!.id);
        once = false;
        return real(p);
      },
    });
    const res = await upsertStickyComment(client, target, renderReport({ paramsDiff: '_New diff._' }));
    expect(res.action).toBe('created');
    expect(marked()).toHaveLength(1);
    expect(marked()[0]!.id).toBe(res.id);
    expect(marked()[0]!.body).toContain('_New diff._');
    expect(writes('PATCH').map((r) => r.status)).toEqual([404]);
  });

  it('sticky comment: our own duplicate already deleted by someone else (404 on delete) is fine', async () => {
    const clients = racing(2, (p) =>
      hooked({
        ...p,
        deleteComment: (real, args) => {
          deleteByHand(args.comment_id);
          return real(args);
        },
      }),
    );
    const results = await Promise.all([
      upsertStickyComment(clients[0]!, target, renderReport({ paramsDiff: '_No changes._' })),
      upsertStickySection(clients[1]!, target, 'experiments', 'EXPERIMENTS'),
    ]);
    expect(marked()).toHaveLength(1);
    expect(marked()[0]!.body).toContain('_No changes._');
    expect(findSection(marked()[0]!.body, 'experiments')).toContain('EXPERIMENTS');
    expect(results.map((r) => r.id)).toEqual([marked()[0]!.id, marked()[0]!.id]);
    expect(writes('DELETE').map((r) => r.status)).toEqual([404]);
  });

  it('sticky comment answering 404 on every update is tried 3 times, then fails with one line', async () => {
    seed([`${REPORT_MARKER}\nold report`]);
    fake.routes.unshift({
      method: 'PATCH',
      path: '/repos/:owner/:repo/issues/comments/:id',
      handle: () => ({
        status: 404,
        body: {
          message: 'Not Found',
          documentation_url: 'https://docs.github.com/rest/issues/comments#update-an-issue-comment',
          status: '404',
        },
      }),
    });
    try {
      const err = await upsertStickySection(octokit(), target, 'experiments', 'E').catch((e: Error) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^PR #12 comment: GitHub answered 404 .*3 times/);
      expect((err as Error).message).not.toContain('\n');
      expect(writes('PATCH')).toHaveLength(3);
      expect(writes('POST')).toHaveLength(0);
    } finally {
      fake.routes.shift();
    }
  });
});

/**
 * `n` clients racing to create the comment: each one's first list is answered, then held until
 * every writer's is (all see a PR without the comment); each one's next list waits until every
 * writer has created its comment (all see all of them, none yet deleted). `wrap` may hook a
 * client's calls further.
 */
function racing(
  n: number,
  wrap: (hooks: Parameters<typeof hooked>[0]) => IssueCommentsClient = hooked,
): IssueCommentsClient[] {
  let listed = 0;
  let created = 0;
  let allListed!: () => void;
  let allCreated!: () => void;
  const listedGate = new Promise<void>((resolve) => (allListed = resolve));
  const createdGate = new Promise<void>((resolve) => (allCreated = resolve));
  return Array.from({ length: n }, () => {
    let lists = 0;
    return wrap({
      listComments: async (real, p) => {
        lists++;
        if (lists === 2) await createdGate;
        const r = await real(p);
        if (lists === 1) {
          if (++listed === n) allListed();
          await listedGate;
        }
        return r;
      },
      createComment: async (real, p) => {
        const r = await real(p);
        if (++created === n) allCreated();
        return r;
      },
    });
  });
}

describe('sticky comment racing writers', () => {
  it.each([3, 4])(
    'sticky comment: %i writers that all find no comment end in one comment holding every part, round after round',
    async (n) => {
      const sections = ['experiments', 'sweeps', 'notes'].slice(0, n - 1);
      for (let round = 0; round < 5; round++) {
        fake.reset();
        const clients = racing(n);
        const writers = [
          () => upsertStickyComment(clients[0]!, target, renderReport({ paramsDiff: `_Report ${round}._` })),
          ...sections.map(
            (name, i) => () =>
              upsertStickySection(clients[i + 1]!, target, name, `${name.toUpperCase()} ${round}`),
          ),
        ];
        // Each round another writer starts first.
        const order = writers.map((_, i) => writers[(i + round) % writers.length]!);
        const results = await Promise.all(order.map((w) => w()));
        expect(marked(), `round ${round}`).toHaveLength(1);
        const body = marked()[0]!.body;
        expect(body.startsWith(REPORT_MARKER), `round ${round}`).toBe(true);
        expect(body.split(REPORT_MARKER), `round ${round}`).toHaveLength(2);
        expect(body, `round ${round}`).toContain(`_Report ${round}._`);
        for (const name of sections)
          expect(findSection(body, name), `round ${round}: ${name}`).toContain(
            `${name.toUpperCase()} ${round}`,
          );
        expect(results.map((r) => r.id)).toEqual(results.map(() => marked()[0]!.id));
        expect(results.filter((r) => r.action === 'created')).toHaveLength(1);
      }
    },
  );
});

describe('sticky comment without write permission', () => {
  const fix = /pull-requests: write.*permissions:/;

  it('sticky comment: a read-only token (403) on creating fails at once with one line naming the fix', async () => {
    fake.state.readOnly = true;
    const err = await upsertStickySection(octokit(), target, 'experiments', 'E').catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const message = (err as Error).message;
    expect(message).toMatch(/^PR #12 comment: GitHub answered 403 /);
    expect(message).toContain('Resource not accessible by integration');
    expect(message).toMatch(fix);
    expect(message).not.toContain('\n');
    expect(isPermissionDenied(err)).toBe(true);
    expect(writes('POST').map((r) => r.status)).toEqual([403]);
    expect(fake.requests.filter((r) => r.method !== 'GET')).toHaveLength(1);
  });

  it.each(CLIENTS)(
    'sticky comment (%s): a read-only token (403) on updating fails at once with one line naming the fix',
    async (_, client) => {
      seed([`${REPORT_MARKER}\nold report`]);
      fake.state.readOnly = true;
      const err = await upsertStickyComment(client(), target, 'new report').catch((e: Error) => e);
      expect((err as Error).message).toMatch(/^PR #12 comment: GitHub answered 403 /);
      expect((err as Error).message).toMatch(fix);
      expect(isPermissionDenied(err)).toBe(true);
      expect(fake.requests.filter((r) => r.method !== 'GET').map((r) => [r.method, r.status])).toEqual([
        ['PATCH', 403],
      ]);
      expect(marked()[0]!.body).toContain('old report');
    },
  );
});
