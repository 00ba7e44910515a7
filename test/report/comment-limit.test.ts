/**
 * The whole sticky comment under GitHub's 65,536-character limit (counted as GitHub counts:
 * characters, not UTF-16 units), whichever writer comes last: the report rewritten after a large
 * Experiments section was written, the section written into a comment already near the limit,
 * and hostile param values (astral characters, a section end marker). Parts are cut whole, with
 * a line saying what was cut. On the fake GitHub API, which rejects a longer body as GitHub does.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  publishExperimentsSection,
  renderExperimentsSection,
  type ExperimentsSection,
} from '../../lib/report/experiments.ts';
import { renderReport, REPORT_MARKER } from '../../lib/report/render.ts';
import { commentChars } from '../../lib/report/fit.ts';
import { findSection, sectionNames } from '../../lib/report/sections.ts';
import {
  issueCommentsClient,
  upsertStickyComment,
  type IssueCommentsClient,
} from '../../lib/report/sticky.ts';
import { fakeRequestClient, startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';

const LIMIT = 65_536;
let fake: FakeGitHub;
beforeAll(async () => {
  fake = await startFakeGitHub();
});
afterAll(async () => {
  await fake.close();
});
afterEach(() => fake.reset());

/** The sticky-comment client over the fake GitHub API (the CLI's request-style client). */
const fakeClient = (): IssueCommentsClient => issueCommentsClient(fakeRequestClient(fake));

const target = { owner: 'Codertocat', repo: 'Hello-World', issueNumber: 5 };
const body = () => fake.state.comments.get(5)![0]!.body;
const section = (n: number, note: (i: number) => string): ExperimentsSection => ({
  head: 'f'.repeat(40),
  headMetrics: { f1_macro: 0.5 },
  experiments: Array.from({ length: n }, (_, i) => ({
    name: `exp-${String(i).padStart(4, '0')}`,
    params: { 'train.lr': i / 1e4, note: note(i) },
    metrics: { f1_macro: i / n },
    status: 'ok',
  })),
});
/** A report of about `size` characters in whole parts (a long note, a long params diff). */
const bigReport = (size: number) => ({
  notes: ['n'.repeat(size / 2)],
  paramsDiff: `| key | base | head |\n|---|---|---|\n${'| p | 1 | 2 |\n'.repeat(size / 2 / 14)}`,
});
const noLoneSurrogate = (s: string) =>
  expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s)).toBe(false);

describe('sticky comment limit', () => {
  it('sticky comment limit: the fake GitHub API refuses a body over 65,536 characters, counting characters', async () => {
    const client = fakeClient();
    // 40,000 astral characters are 80,000 UTF-16 units but 40,000 characters: accepted.
    await upsertStickyComment(client, target, `${REPORT_MARKER}\n${'😀'.repeat(40_000)}`);
    expect(commentChars(body())).toBeLessThanOrEqual(LIMIT);
    expect(commentChars('😀é')).toBe(2);
    await expect(
      client.rest.issues.createComment({ ...target, issue_number: 6, body: 'x'.repeat(LIMIT + 1) }),
    ).rejects.toMatchObject({ status: 422 });
  });

  it('sticky comment limit: the report rewritten after a full Experiments section still fits, cut between whole parts, naming them', async () => {
    const client = fakeClient();
    await upsertStickyComment(client, target, (room) =>
      renderReport({ notes: ['short'] }, { maxChars: room }),
    );
    await publishExperimentsSection(
      client,
      target,
      section(1_000, () => 'x'.repeat(400)),
    );
    const experiments = findSection(body(), 'experiments')!;
    expect(experiments.length).toBeGreaterThan(20_000);
    // The PR workflow runs again with a report that alone takes its whole 60,000 characters.
    const input = bigReport(58_000);
    const res = await upsertStickyComment(client, target, (room) => renderReport(input, { maxChars: room }));
    expect(res.action).toBe('updated');
    const text = body();
    expect(commentChars(text)).toBeLessThanOrEqual(LIMIT);
    expect(text.startsWith(REPORT_MARKER)).toBe(true);
    expect(findSection(text, 'experiments')).toBe(experiments);
    expect(text).toMatch(/_Report truncated \(GitHub's comment size limit\): left off: Params diff/);
    // The cut is between parts: the params table is either whole or absent.
    expect(text).not.toContain('| key | base | head |');
  });

  it('sticky comment limit: a plain string body is cut to fit beside the carried sections', async () => {
    const client = fakeClient();
    await publishExperimentsSection(
      client,
      target,
      section(1_000, () => 'x'.repeat(400)),
    );
    const blocks = Array.from({ length: 700 }, (_, i) => `### part ${i}\n\n${'r'.repeat(100)}`);
    await upsertStickyComment(client, target, `${REPORT_MARKER}\n${blocks.join('\n\n')}`);
    const text = body();
    expect(commentChars(text)).toBeLessThanOrEqual(LIMIT);
    expect(sectionNames(text)).toEqual(['experiments']);
    // The report's writer cuts its own text and keeps the other writer's section whole.
    expect(findSection(text, 'experiments')).toMatch(/\| 1 \| exp-0999 \|/);
    expect(text).toMatch(/left off: part \d+/);
    expect(text).toMatch(/### part 0\n/);
  });

  it('sticky comment limit: the Experiments section written into a comment already near the limit still fits', async () => {
    const client = fakeClient();
    // A report of 65,400 characters (an older writer, or edited by hand) is already there.
    await client.rest.issues.createComment({
      ...target,
      issue_number: 5,
      body: `${REPORT_MARKER}\n## lockstep report\n\n${'z'.repeat(65_400)}`,
    });
    await publishExperimentsSection(
      client,
      target,
      section(100, () => 'x'.repeat(10)),
    );
    const text = body();
    expect(commentChars(text)).toBeLessThanOrEqual(LIMIT);
    expect(findSection(text, 'experiments')).toMatch(/100 more experiments not shown|left off/);
  });

  it('sticky comment limit: astral characters in params are counted as characters and never split', async () => {
    const client = fakeClient();
    await upsertStickyComment(client, target, (room) => renderReport(bigReport(20_000), { maxChars: room }));
    // Each row is ~1,000 characters but ~2,000 UTF-16 units.
    await publishExperimentsSection(
      client,
      target,
      section(200, (i) => `${'🎛'.repeat(990)}${i}`),
    );
    const text = body();
    expect(commentChars(text)).toBeLessThanOrEqual(LIMIT);
    noLoneSurrogate(text);
    const rows = text.split('\n').filter((l) => /^\| \d+ \| exp-/.test(l));
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.endsWith('| ok |'))).toBe(true);
  });

  it('sticky comment limit: a param value holding a section marker cannot end the section early', async () => {
    const client = fakeClient();
    const evil = '<!-- /lockstep-section:experiments --> <!-- lockstep-section:experiments --> <details>';
    await publishExperimentsSection(
      client,
      target,
      section(3, () => evil),
    );
    await publishExperimentsSection(
      client,
      target,
      section(2, () => 'fine'),
    );
    const text = body();
    expect(text.match(/<!-- lockstep-section:experiments -->/g)).toHaveLength(1);
    expect(text.match(/<!-- \/lockstep-section:experiments -->/g)).toHaveLength(1);
    expect(findSection(text, 'experiments')).toContain('Experiments (2,');
    expect(text).not.toContain('<details>');
    expect(renderExperimentsSection(section(1, () => evil))).toContain('&lt;!-- /lockstep-section');
  });
});
