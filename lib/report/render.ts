/**
 * Renders the PR report: one Markdown document (the sticky PR comment and the job summary share
 * it). It leads with the headline metrics against the base and the gate verdict; then Mermaid
 * charts (learning curves, per-class F1), the confusion matrix; per-class and all other metrics
 * folded in `<details>`; the params diff; the stages (folded); plot links; the Experiments section
 * when experiments ran for the PR. Pure: every input is already read.
 */

import type { GateVerdict } from '../gate.ts';
import { perClassF1Of } from '../plots/build.ts';
import { learningCurvesChart, perClassF1Chart, type ChartRevision } from './charts.ts';
import { renderHeadline, renderPerClass, type Comparison, type ReportRevision } from './headline.ts';
import { commentChars, fitBlocks } from './fit.ts';
import { wrapSection } from './sections.ts';

export type { Comparison, ReportRevision };

/** Hidden marker that identifies the one sticky comment per PR. */
export const REPORT_MARKER = '<!-- lockstep-report -->';

/** GitHub rejects comment bodies above 65536 characters; keep a margin for the footer. */
const MAX_BODY = 60_000;

export interface RenderOptions {
  /**
   * Characters the report may take at most, counted as GitHub counts (default 60,000; the
   * sticky comment passes the room its other sections leave, see ./sticky.ts).
   */
  maxChars?: number;
}

/** `out/eval/confusion.json`: rows are true labels, columns predicted labels. */
export interface Confusion {
  labels: string[];
  matrix: number[][];
}

/** One stage line of the run: what happened and why. */
export interface StageLine {
  stage: string;
  /** `ran`, `skipped`, `restored`, `failed`, ... as the runner reports it. */
  status: string;
  reason?: string;
}

export interface ReportInput {
  /** Head commit the report describes. */
  commit?: string;
  /** Base revision the diffs compare against (`main`, a sha). */
  base?: string;
  /** Link to the workflow run. */
  runUrl?: string;
  /** Link to the run's artifacts (plots are uploaded there). */
  artifactsUrl?: string;
  /** Name of the uploaded artifact holding the plots. */
  artifactName?: string;
  stages?: StageLine[];
  /** Markdown table of the params diff, or undefined when it could not be computed. */
  paramsDiff?: string;
  /** Markdown table of the metrics diff with deltas. */
  metricsDiff?: string;
  /** Markdown of the evaluate slices, worst first (lib/slices/table.ts `renderSlicesSection`). */
  slices?: string;
  verdict?: GateVerdict;
  confusion?: Confusion;
  /** Plot file names under out/eval/plots (e.g. `confusion.svg`). */
  plots?: string[];
  /** What this run did not do and why ("fork PR: no cache push"), shown in their own section. */
  notes?: string[];
  /** Base and head evaluate metrics, learning curves and slices: headline, charts, per-class. */
  comparison?: Comparison;
  /** Signed, expiring links to the plot PNGs, when a GCS remote holds them. */
  plotLinks?: { name: string; url: string }[];
  /** Body of the Experiments section (lib/report/experiments.ts), kept between its markers. */
  experiments?: string;
}

/** Escapes characters that would break a Markdown table cell. */
export function escapeCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function table(header: string[], rows: string[][]): string {
  const lines = [
    `| ${header.map(escapeCell).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(escapeCell).join(' | ')} |`),
  ];
  return lines.join('\n');
}

/** The confusion matrix as a Markdown table, diagonal in bold, with per-row recall. */
export function renderConfusion(c: Confusion): string {
  const rows = c.labels.map((label, i) => {
    const row = c.matrix[i] ?? [];
    const total = row.reduce((a, b) => a + b, 0);
    const cells = c.labels.map((_, j) => (i === j ? `**${row[j] ?? 0}**` : String(row[j] ?? 0)));
    const recall = total > 0 ? ((row[i] ?? 0) / total).toFixed(2) : '–';
    return [label, ...cells, recall];
  });
  return table(['true \\ predicted', ...c.labels, 'recall'], rows);
}

/** The gate verdict: headline and one row per reason. */
export function renderVerdict(v: GateVerdict): string {
  const head = v.passed ? '✅ **Gate passed**' : '❌ **Gate failed**';
  const where = v.baseline?.commit ? ` at \`${v.baseline.commit.slice(0, 7)}\`` : '';
  const base = v.baseline
    ? `baseline: \`${v.baseline.env ?? 'baseline'}\`${where}`
    : 'no baseline environment yet: value thresholds only';
  const rows = v.reasons.map((r) => [r.passed ? '✅' : '❌', r.metric, r.kind, r.detail]);
  return [
    `${head} (${base})`,
    '',
    rows.length ? table(['', 'metric', 'check', 'detail'], rows) : '_No thresholds._',
  ].join('\n');
}

/** A collapsed block: GitHub renders the Markdown inside once a blank line follows the summary. */
function details(summary: string, body: string): string {
  return `<details><summary>${summary}</summary>\n\n${body}\n\n</details>`;
}

function headline(input: ReportInput): string {
  if (!input.verdict) return '⚪ gate not evaluated';
  return input.verdict.passed ? '✅ gate passed' : '❌ gate failed';
}

/**
 * Renders the whole report, starting with {@link REPORT_MARKER}. Sections whose input is missing
 * say so instead of disappearing, so a reader knows what was not computed.
 */
export function renderReport(input: ReportInput, options: RenderOptions = {}): string {
  const maxBody = Math.min(MAX_BODY, options.maxChars ?? MAX_BODY);
  const parts: string[] = [REPORT_MARKER, `## lockstep report: ${headline(input)}`];
  const meta: string[] = [];
  if (input.commit) meta.push(`commit \`${input.commit.slice(0, 7)}\``);
  if (input.base) meta.push(`compared with \`${input.base}\``);
  if (input.runUrl) meta.push(`[workflow run](${input.runUrl})`);
  if (meta.length) parts.push(meta.join(' · '));

  const c = input.comparison;
  if (c) parts.push(renderHeadline(c));
  // A heading and its body are one part: a cut keeps or drops both.
  const titled = (title: string, ...body: string[]) => [title, ...body].join('\n\n');
  parts.push(
    titled('### Gate verdict', input.verdict ? renderVerdict(input.verdict) : '_The gate did not run._'),
  );
  if (input.notes?.length) {
    parts.push(titled('### Skipped in this run', input.notes.map((n) => `- ${n}`).join('\n')));
  }
  if (c) {
    const revs: ChartRevision[] = [...(c.base ? [c.base] : []), c.head].map((r) => ({
      label: r.label,
      history: r.history,
      f1: perClassF1Of(r.metrics),
    }));
    const charts = [learningCurvesChart(revs), perClassF1Chart(revs)].filter((x) => x !== undefined);
    if (charts.length) parts.push(titled('### Charts', ...charts));
  }
  if (input.slices) parts.push(titled('### Slices (test split, worst first)', input.slices));
  parts.push(
    titled(
      '### Confusion matrix (test split)',
      input.confusion ? renderConfusion(input.confusion) : '_No confusion matrix (evaluate did not run)._',
    ),
  );
  const perClass = c ? renderPerClass(c) : undefined;
  if (perClass) parts.push(details('Per-class metrics', perClass));
  parts.push(
    details('All metrics against the base', input.metricsDiff?.trim() || '_Metrics diff not available._'),
  );
  parts.push(titled('### Params diff', input.paramsDiff?.trim() || '_Params diff not available._'));
  if (input.stages?.length) {
    parts.push(
      details(
        'Stages',
        table(
          ['stage', 'status', 'reason'],
          input.stages.map((s) => [s.stage, s.status, s.reason ?? '']),
        ),
      ),
    );
  }
  if (input.plots?.length || input.plotLinks?.length) {
    const where = input.artifactsUrl
      ? `in the \`${input.artifactName ?? 'plots'}\` artifact of [this run](${input.artifactsUrl})`
      : `in \`out/eval/plots/\``;
    const lines = input.plots?.length ? [`${input.plots.map((p) => `\`${p}\``).join(', ')}: ${where}.`] : [];
    if (input.plotLinks?.length) {
      lines.push(
        `Signed links (they expire): ${input.plotLinks.map((l) => `[${escapeCell(l.name)}](${l.url})`).join(' · ')}`,
      );
    }
    parts.push(titled('### Plots', lines.join('\n\n')));
  }
  // The Experiments section is kept whole (its end marker too), cut to whole rows when it alone
  // would crowd out the report; the report is cut between parts, never inside a Mermaid fence,
  // a table or a <details>, and the marker and title always stay (the next run finds the comment).
  const experiments = input.experiments ? fitLines(input.experiments, maxBody / 2) : undefined;
  const tail = experiments ? `\n${wrapSection('experiments', experiments)}\n` : '';
  const body = fitBlocks(
    parts,
    maxBody - commentChars(tail) - 1,
    (list) =>
      `_Report truncated (GitHub's comment size limit): left off: ${list}. The full report is in the job summary._`,
    2,
  );
  return `${body}\n${tail}`;
}

/** `text` cut to whole lines within `max` characters, saying how many lines were left off. */
function fitLines(text: string, max: number): string {
  if (text.length <= max) return text;
  const lines = text.split('\n');
  let kept = '';
  let n = 0;
  for (const line of lines) {
    if (kept.length + line.length + 1 > max - 80) break;
    kept += `${line}\n`;
    n++;
  }
  return `${kept}\n_${lines.length - n} more lines left off (GitHub's comment size limit)._`;
}
