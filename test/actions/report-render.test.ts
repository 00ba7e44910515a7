import { describe, expect, it } from 'vitest';
import {
  escapeCell,
  REPORT_MARKER,
  renderConfusion,
  renderReport,
  renderVerdict,
} from '../../lib/report/render.ts';
import { upsertStickyComment, type IssueCommentsClient } from '../../lib/report/sticky.ts';

describe('renderReport', () => {
  it('renderReport starts with the hidden marker and says which sections were not computed', () => {
    const body = renderReport({});
    expect(body.startsWith(REPORT_MARKER)).toBe(true);
    expect(body).toContain('⚪ gate not evaluated');
    expect(body).toContain('_Params diff not available._');
    expect(body).toContain('_Metrics diff not available._');
    expect(body).toContain('_The gate did not run._');
    expect(body).toContain('_No confusion matrix (evaluate did not run)._');
  });

  it('renderReport truncates a body GitHub would reject (65536 characters)', () => {
    const huge = 'x'.repeat(70_000);
    const body = renderReport({ paramsDiff: huge });
    expect(body.length).toBeLessThan(65_536);
    expect(body).toContain('Report truncated');
  });

  it.each([
    ['a|b', 'a\\|b'],
    ['line\nbreak', 'line break'],
    ['back\\slash', 'back\\\\slash'],
  ])('escapeCell keeps %j inside one table cell', (input, expected) => {
    expect(escapeCell(input)).toBe(expected);
  });

  it('renderConfusion bolds the diagonal and computes recall per true label', () => {
    const md = renderConfusion({
      labels: ['a', 'b'],
      matrix: [
        [4, 0],
        [2, 2],
      ],
    });
    expect(md.split('\n')).toEqual([
      '| true \\\\ predicted | a | b | recall |',
      '| --- | --- | --- | --- |',
      '| a | **4** | 0 | 1.00 |',
      '| b | 2 | **2** | 0.50 |',
    ]);
  });

  it('renderVerdict names the baseline environment and commit', () => {
    const md = renderVerdict({
      passed: false,
      baseline: { env: 'prod', commit: 'abcdef0123456789', metrics: {} },
      reasons: [
        { metric: 'f1_macro', kind: 'change', passed: false, detail: '0.61 dropped 0.05 > tolerance 0.01' },
      ],
    });
    expect(md).toContain('❌ **Gate failed** (baseline: `prod` at `abcdef0`)');
    expect(md).toContain('| ❌ | f1_macro | change | 0.61 dropped 0.05 > tolerance 0.01 |');
  });
});

describe('upsertStickyComment', () => {
  /** An in-memory client with more than one page of comments, the marker on page 2. */
  function client(count: number, markerAt?: number) {
    const comments = Array.from({ length: count }, (_, i) => ({
      id: i + 1,
      body: i === markerAt ? `${REPORT_MARKER}\nold` : `comment ${i}`,
    }));
    const calls: string[] = [];
    const c: IssueCommentsClient = {
      rest: {
        issues: {
          listComments: async ({ per_page = 30, page = 1 }) => {
            calls.push(`list ${page}`);
            return { data: comments.slice((page - 1) * per_page, page * per_page) };
          },
          createComment: async ({ body }) => {
            calls.push('create');
            const made = { id: 9999, body };
            comments.push(made);
            return { data: made };
          },
          updateComment: async ({ comment_id, body }) => {
            calls.push(`update ${comment_id}`);
            const found = comments.find((x) => x.id === comment_id)!;
            found.body = body;
            return { data: found };
          },
          deleteComment: async ({ comment_id }) => {
            calls.push(`delete ${comment_id}`);
            comments.splice(
              comments.findIndex((x) => x.id === comment_id),
              1,
            );
            return {};
          },
        },
      },
    };
    return { c, calls, comments };
  }
  const target = { owner: 'o', repo: 'r', issueNumber: 1 };

  it('upsertStickyComment finds the marker past the first page and updates that comment', async () => {
    const { c, calls } = client(150, 120);
    const res = await upsertStickyComment(c, target, `${REPORT_MARKER}\nnew`);
    expect(res).toMatchObject({ action: 'updated', id: 121 });
    expect(calls).toEqual(['list 1', 'list 2', 'update 121']);
  });

  it('upsertStickyComment creates the comment (with the marker) when none has it', async () => {
    const { c, calls, comments } = client(3);
    const res = await upsertStickyComment(c, target, 'no marker here');
    expect(res.action).toBe('created');
    // After creating, it lists again: another writer may have created one at the same moment.
    expect(calls).toEqual(['list 1', 'create', 'list 1']);
    expect(comments.at(-1)!.body.startsWith(REPORT_MARKER)).toBe(true);
  });
});
