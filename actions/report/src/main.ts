/**
 * The PR report: params diff, metrics diff against the base branch, gate verdict, confusion
 * matrix and plot links, written to the job summary and kept as ONE sticky PR comment. A
 * read-only token (a PR from a fork) gets a warning and the summary only; the step succeeds.
 */
import * as core from '@actions/core';
import * as github from '@actions/github';
import { readReportFiles } from '../../../lib/report/read.ts';
import { readComparison } from '../../../lib/report/compare.ts';
import { findRepo } from '../../../lib/repo.ts';
import { defaultRemote } from '../../../lib/store/remote-config.ts';
import { isSigningRemote, publishPlots } from '../../../lib/report/publish.ts';
import { renderReport, type StageLine } from '../../../lib/report/render.ts';
import { isPermissionDenied, upsertStickyComment } from '../../../lib/report/sticky.ts';
import { lastError, runLockstep } from '../../_shared/cli.ts';
import { slicesMarkdown } from '../../_shared/slices.ts';
import { jsonInput, workingDirectory } from '../../_shared/inputs.ts';

/** `lockstep <kind> diff <base> --md` (base vs the working tree); a note when it fails. */
async function diffMarkdown(kind: 'params' | 'metrics', base: string, cwd: string, notes: string[]) {
  // The slice table has its own section (below), with intervals.
  const args =
    kind === 'metrics' ? [kind, 'diff', base, '--md', '--no-slices'] : [kind, 'diff', base, '--md'];
  const result = await runLockstep(args, { cwd, echo: false });
  if (result.code === 0) return result.stdout.join('\n');
  notes.push(`${kind} diff: ${lastError(result)}`);
  return undefined;
}

export async function run(): Promise<void> {
  try {
    const cwd = workingDirectory();
    const { context } = github;
    const pr = context.payload.pull_request as
      { number: number; base?: { sha?: string; ref?: string } } | undefined;
    const base = core.getInput('base') || pr?.base?.sha || '';
    const prNumber = core.getInput('pull-request') ? Number(core.getInput('pull-request')) : pr?.number;
    if (prNumber !== undefined && !(Number.isInteger(prNumber) && prNumber > 0)) {
      throw new Error(
        `input pull-request: not a pull request number "${core.getInput('pull-request')}". Pass e.g. 42.`,
      );
    }
    const notes = core.getMultilineInput('notes');
    const stages = jsonInput<StageLine[]>('stages', []);
    const { owner, repo } = context.repo;
    const runUrl = `${context.serverUrl}/${owner}/${repo}/actions/runs/${context.runId}`;
    const files = await readReportFiles(cwd);

    const paramsDiff = base ? await diffMarkdown('params', base, cwd, notes) : undefined;
    const metricsDiff = base ? await diffMarkdown('metrics', base, cwd, notes) : undefined;
    if (!base) notes.push('no base revision: diffs skipped (pass the base input or run on a pull request).');
    const lsRepo = findRepo(cwd);
    const baseLabel = pr?.base?.ref ?? (base ? base.slice(0, 7) : undefined);
    const remote = await defaultRemote(lsRepo);
    let comparison;
    try {
      const read = await readComparison(lsRepo, base || undefined, {
        remote,
        baseLabel,
        headLabel: 'this PR',
      });
      comparison = read.comparison;
      for (const n of read.notes) core.info(n);
    } catch (err) {
      notes.push(`headline and charts: ${err instanceof Error ? err.message : String(err)}`);
    }
    // PNGs stay private: signed, expiring links from the GCS remote, or only the artifact.
    let plotLinks;
    const hours = Number(core.getInput('plot-links-hours') || '0');
    if (hours > 0 && isSigningRemote(remote) && files.plots.length) {
      try {
        const pngs = files.plots.filter((p) => p.endsWith('.png')).map((p) => `${files.plotsDir}/${p}`);
        plotLinks = await publishPlots(remote, pngs, { expiresInSeconds: hours * 3600 });
      } catch (err) {
        notes.push(`plot links: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const input = {
      commit: pr ? (context.payload.pull_request as { head?: { sha?: string } }).head?.sha : context.sha,
      base: pr?.base?.ref ?? (base || undefined),
      runUrl,
      artifactsUrl: core.getInput('artifact-url') || `${runUrl}#artifacts`,
      artifactName: core.getInput('artifact-name'),
      stages,
      paramsDiff,
      metricsDiff,
      slices: await slicesMarkdown(cwd, base || undefined, pr?.base?.ref),
      verdict: files.verdict,
      confusion: files.confusion,
      plots: files.plots,
      notes,
      comparison,
      plotLinks,
    };
    const body = renderReport(input);

    let mode = 'summary-only';
    if (prNumber === undefined) {
      core.info('Not a pull request event: the report goes to the job summary only.');
    } else {
      const octokit = github.getOctokit(core.getInput('github-token', { required: true }));
      try {
        const res = await upsertStickyComment(octokit, { owner, repo, issueNumber: prNumber }, (room) =>
          // The comment holds the Experiments section too: the report gets the room it leaves.
          renderReport(input, { maxChars: room }),
        );
        mode = res.action;
        core.setOutput('comment-id', String(res.id));
        core.setOutput('comment-url', res.url ?? '');
        core.info(`Report comment ${res.action}: ${res.url ?? res.id}`);
      } catch (err) {
        if (!isPermissionDenied(err)) throw err;
        core.warning(
          `report: the token cannot comment on PR #${prNumber} (403, read-only token: a PR from a fork?). ` +
            'The report is in the job summary instead.',
        );
      }
    }
    core.setOutput('mode', mode);
    core.setOutput('passed', files.verdict ? String(files.verdict.passed) : '');
    await core.summary.addRaw(body).write();
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
