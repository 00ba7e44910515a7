/**
 * The Experiments section of the ONE sticky PR comment, on the fake GitHub API: `exp comment
 * --report` writes it (creating the comment when the PR has none), the PR workflow's report
 * update keeps it, and a second experiments run replaces it in place, never adding a comment.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { writeExperiment } from '../../lib/experiments/store.ts';
import {
  publishExperimentsSection,
  renderExperimentsSection,
  sortExperiments,
  type ExperimentRow,
} from '../../lib/report/experiments.ts';
import { renderReport, REPORT_MARKER } from '../../lib/report/render.ts';
import { findSection, replaceSection } from '../../lib/report/sections.ts';
import {
  issueCommentsClient,
  upsertStickyComment,
  upsertStickySection,
  type IssueCommentsClient,
} from '../../lib/report/sticky.ts';
import { fakeRequestClient, startFakeGitHub, type FakeGitHub } from '../support/fake-github.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

let fake: FakeGitHub;
let t: TmpRepo | undefined;
const saved = { ...process.env };
beforeAll(async () => {
  fake = await startFakeGitHub();
});
afterAll(async () => {
  await fake.close();
});
afterEach(async () => {
  process.env = { ...saved };
  fake.reset();
  await t?.cleanup();
  t = undefined;
});

const LOCK = (f1: number) =>
  `schema: 1\ndata: {}\nstages:\n  evaluate:\n    code: ${'a'.repeat(64)}\n    deps: []\n    params: {}\n    outs: []\n    metrics:\n      f1_macro: ${f1}\n      accuracy: 0.7\n`;

async function cli(...args: string[]) {
  const out = memoryOutput();
  const code = await main(['-C', t!.root, ...args], out);
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr.join('\n') };
}

async function experiment(name: string, lr: number, f1: number | undefined, head: string) {
  await writeExperiment(
    t!.root,
    head,
    {},
    {
      name,
      kind: 'run',
      overrides: { 'train.lr': lr },
      metrics: f1 === undefined ? {} : { f1_macro: f1, accuracy: 0.7 },
      status: f1 === undefined ? 'failed' : 'ok',
      created: '2026-01-01T00:00:00Z',
    },
  );
}

/** The sticky-comment client over the fake GitHub API (the CLI's request-style client). */
const fakeClient = (): IssueCommentsClient => issueCommentsClient(fakeRequestClient(fake));

/** `n` experiments, exp-0000 worst to exp-<n-1> best by f1_macro. */
const many = (n: number, params: (i: number) => Record<string, unknown> = (i) => ({ 'train.lr': i / 1e4 })) =>
  Array.from({ length: n }, (_, i) => ({
    name: `exp-${String(i).padStart(4, '0')}`,
    params: params(i),
    metrics: { f1_macro: i / n },
    status: 'ok',
  }));
const rowsOf = (md: string) => md.split('\n').filter((l) => /^\| \d+ \| exp-/.test(l));

describe('experiments section', () => {
  it('experiments section sorts best first, failed last, with deltas against the head', () => {
    const rows: ExperimentRow[] = [
      { name: 'b', params: {}, metrics: { f1_macro: 0.5 }, status: 'ok' },
      { name: 'c', params: {}, metrics: {}, status: 'failed' },
      { name: 'a', params: {}, metrics: { f1_macro: 0.7 }, status: 'ok' },
    ];
    expect(sortExperiments(rows).map((r) => r.name)).toEqual(['a', 'b', 'c']);
    const md = renderExperimentsSection({
      head: 'f'.repeat(40),
      headMetrics: { f1_macro: 0.6 },
      experiments: rows,
    });
    expect(md).toContain('| 1 | a | – | 0.7 (+0.1 ▲) |');
    expect(md).toContain('| 2 | b | – | 0.5 (−0.1 ▼) |');
    expect(md).toContain('| 3 | c | – | – |');
  });

  it('experiments section is written into the one sticky comment, kept by the report, replaced in place', async () => {
    t = await createTmpRepo({ 'artifacts.lock.yaml': LOCK(0.6) });
    const head = t.git('rev-parse', 'HEAD');
    await experiment('lr-small', 0.001, 0.55, head);
    await experiment('lr-big', 0.01, 0.72, head);
    await experiment('lr-broken', 1, undefined, head);
    Object.assign(process.env, {
      GITHUB_TOKEN: 't',
      GITHUB_API_URL: fake.url,
      GITHUB_REPOSITORY: 'Codertocat/Hello-World',
      LOCKSTEP_PR_NUMBER: '7',
    });

    // 1. Experiments finish before the PR workflow's report: the comment is created with them.
    const first = await cli('exp', 'comment', '--report');
    expect(first.code, first.stderr).toBe(0);
    const comments = () => fake.state.comments.get(7) ?? [];
    expect(comments()).toHaveLength(1);
    const section = findSection(comments()[0]!.body, 'experiments')!;
    expect(comments()[0]!.body.startsWith(REPORT_MARKER)).toBe(true);
    const order = ['lr-big', 'lr-small', 'lr-broken'].map((n) => section.indexOf(`| ${n} |`));
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(section).toContain('| 1 | lr-big | train.lr=0.01 | 0.72 (+0.12 ▲) |');
    expect(first.stdout).toContain('### Experiments (3, against the PR head');

    // 2. The report rewrites the comment: the section survives, still one comment.
    const client = fakeClient();
    const target = { owner: 'Codertocat', repo: 'Hello-World', issueNumber: 7 };
    await upsertStickyComment(client, target, renderReport({ paramsDiff: '_No changes._' }));
    expect(comments()).toHaveLength(1);
    expect(comments()[0]!.body).toContain('_No changes._');
    expect(findSection(comments()[0]!.body, 'experiments')).toBe(section);

    // 3. Another experiment, another run: the section is replaced, the report kept.
    await experiment('lr-mid', 0.003, 0.8, head);
    expect((await cli('exp', 'comment', '--report')).code).toBe(0);
    expect(comments()).toHaveLength(1);
    const body = comments()[0]!.body;
    expect(body).toContain('_No changes._');
    expect(body.match(/<!-- lockstep-section:experiments -->/g)).toHaveLength(1);
    expect(findSection(body, 'experiments')).toContain('| 1 | lr-mid | train.lr=0.003 | 0.8 (+0.2 ▲) |');
  });

  it("exp comment --report with a token that cannot write (403) fails with one line naming the workflow's permissions", async () => {
    t = await createTmpRepo({ 'artifacts.lock.yaml': LOCK(0.6) });
    await experiment('lr-small', 0.001, 0.55, t.git('rev-parse', 'HEAD'));
    Object.assign(process.env, {
      GITHUB_TOKEN: 't',
      GITHUB_API_URL: fake.url,
      GITHUB_REPOSITORY: 'Codertocat/Hello-World',
      LOCKSTEP_PR_NUMBER: '7',
    });
    fake.state.readOnly = true;
    const r = await cli('exp', 'comment', '--report');
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n')).toEqual([
      'lockstep: PR #7 comment: GitHub answered 403 (the token cannot write comments on the pull request) "Resource not accessible by integration". Grant pull-requests: write in the workflow\'s permissions: (a PR from a fork only gets a read-only token: write the comment from a workflow_run workflow instead).',
    ]);
    // Tried once, not again.
    expect(fake.requests.filter((q) => q.method !== 'GET').map((q) => [q.method, q.status])).toEqual([
      ['POST', 403],
    ]);
  });

  it('two writers that both find no sticky comment end with one comment holding both parts', async () => {
    const target = { owner: 'Codertocat', repo: 'Hello-World', issueNumber: 9 };
    // Each writer's first list of comments is answered, then held until the other's is too: both
    // see a PR without the comment and both create one, in whichever order the server takes them.
    for (let round = 0; round < 6; round++) {
      fake.reset();
      let arrived = 0;
      let release!: () => void;
      const bothListed = new Promise<void>((resolve) => (release = resolve));
      const gated = (): IssueCommentsClient => {
        const c = fakeClient();
        let first = true;
        return {
          rest: {
            issues: {
              ...c.rest.issues,
              listComments: async (p) => {
                const r = await c.rest.issues.listComments(p);
                if (first) {
                  first = false;
                  if (++arrived === 2) release();
                  await bothListed;
                }
                return r;
              },
            },
          },
        };
      };
      const report = upsertStickyComment(gated(), target, renderReport({ paramsDiff: '_No changes._' }));
      const section = upsertStickySection(gated(), target, 'experiments', `EXPERIMENTS TABLE ${round}`);
      const results = await Promise.all([report, section]);
      const comments = fake.state.comments.get(9) ?? [];
      expect(comments, `round ${round}`).toHaveLength(1);
      const body = comments[0]!.body;
      expect(body.startsWith(REPORT_MARKER)).toBe(true);
      expect(body).toContain('_No changes._');
      expect(findSection(body, 'experiments')).toContain(`EXPERIMENTS TABLE ${round}`);
      expect(body.match(new RegExp(REPORT_MARKER.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'g'))).toHaveLength(
        1,
      );
      // Both writers report the comment that stays.
      expect(results.map((r) => r.id)).toEqual([comments[0]!.id, comments[0]!.id]);
      expect(results.map((r) => r.action).sort()).toEqual(['created', 'updated']);
    }
  });

  it('experiments section with 1,000 experiments shows the best 50 and says how many more and how to list them', () => {
    const md = renderExperimentsSection({
      head: 'f'.repeat(40),
      headMetrics: { f1_macro: 0.5 },
      experiments: many(1_000),
    });
    const rows = rowsOf(md);
    expect(rows).toHaveLength(50);
    expect(rows[0]).toMatch(/^\| 1 \| exp-0999 \|/);
    expect(rows[49]).toMatch(/^\| 50 \| exp-0950 \|/);
    expect(md).toContain(
      '_950 more experiments not shown (best 50 of 1000). All of them: `npx lockstep exp pull origin && npx lockstep exp show --rev fffffff --sort f1_macro`._',
    );
    expect(md.length).toBeLessThanOrEqual(30_000);
    // Under the caps nothing is left off and no such line is written.
    expect(
      renderExperimentsSection({ head: 'f'.repeat(40), headMetrics: {}, experiments: many(50) }),
    ).not.toMatch(/not shown/);
  });

  it('experiments section cuts long rows to whole rows within its character cap', () => {
    const md = renderExperimentsSection(
      {
        head: 'f'.repeat(40),
        headMetrics: {},
        experiments: many(200, (i) => ({ 'train.lr': i, note: 'x'.repeat(2_000) })),
      },
      'f1_macro',
      { maxRows: 1_000 },
    );
    const rows = rowsOf(md);
    expect(rows.length).toBeGreaterThan(5);
    expect(rows.length).toBeLessThan(20);
    expect(rows.every((r) => r.endsWith('| ok |'))).toBe(true);
    expect(md.length).toBeLessThanOrEqual(30_000);
    expect(md).toContain(`_${200 - rows.length} more experiments not shown (best ${rows.length} of 200)`);
  });

  it("experiments section fits the room a long report leaves in the sticky comment under GitHub's limit", async () => {
    const target = { owner: 'Codertocat', repo: 'Hello-World', issueNumber: 9 };
    const client = fakeClient();
    await upsertStickyComment(client, target, renderReport({ notes: ['n'.repeat(50_000)] }));
    const res = await publishExperimentsSection(client, target, {
      head: 'f'.repeat(40),
      headMetrics: {},
      experiments: many(1_000, (i) => ({ 'train.lr': i, note: 'x'.repeat(500) })),
    });
    expect(res.action).toBe('updated');
    const body = fake.state.comments.get(9)![0]!.body;
    expect(body.length).toBeLessThan(65_536);
    expect(body).toContain('n'.repeat(50_000));
    const section = findSection(body, 'experiments')!;
    expect(rowsOf(section).length).toBeGreaterThan(0);
    expect(rowsOf(section).length).toBeLessThan(50);
    expect(section).toMatch(/\d+ more experiments not shown \(best \d+ of 1000\)/);
  });

  it('experiments section replaces a section whose end marker was deleted by hand', () => {
    const text = replaceSection(
      'report\n\n<!-- lockstep-section:experiments -->\nold rows',
      'experiments',
      'new',
    );
    expect(text).toBe(
      'report\n\n<!-- lockstep-section:experiments -->\nnew\n<!-- /lockstep-section:experiments -->\n',
    );
  });
});
