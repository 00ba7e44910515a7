/**
 * The sticky comment writer against the fake GitHub API through the real Octokit client (as the
 * report action holds it, and as the CLI's request-style client over it): the marked comment is
 * found past GitHub's 100-comment pages by following the `link` header.
 */
import { getOctokit } from '@actions/github';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { REPORT_MARKER, renderReport } from '../../lib/report/render.ts';
import { findSection } from '../../lib/report/sections.ts';
import {
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
