/**
 * The Experiments section of the sticky PR comment: one row per experiment started from the PR
 * head, with the params it set and its metrics against the head's, best first (by the sort
 * metric; failed experiments last). Rendering is pure; {@link experimentsForHead} reads them.
 */
import type { Repo } from '../repo.ts';
import { listExperiments } from '../experiments/store.ts';
import { lockfileAtRev } from '../lockfile.ts';
import { resolveRev } from '../git.ts';
import { formatValue } from '../pipeline/diff.ts';
import { formatDelta } from './headline.ts';
import {
  upsertStickySection,
  type IssueCommentsClient,
  type StickyResult,
  type StickyTarget,
} from './sticky.ts';

export interface ExperimentRow {
  name: string;
  /** Params the experiment set (dotted key → value). */
  params: Record<string, unknown>;
  metrics: Record<string, number>;
  status: string;
}

export interface ExperimentsSection {
  /** The PR head commit the experiments started from. */
  head: string;
  /** The head's evaluate metrics (empty when its lockfile has none). */
  headMetrics: Record<string, number>;
  experiments: ExperimentRow[];
}

/** Metric columns, the sort metric first. */
const COLUMNS = ['f1_macro', 'accuracy', 'mcc'];

/**
 * `text` safe in one table cell of the comment: `<` and `>` as entities, so a value can neither
 * open HTML (`<details>`) nor end the section early (a `<!-- /lockstep-section:... -->` marker).
 */
function escapeCell(text: string): string {
  return text
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\r?\n/g, ' ')
    .replace(/`/g, "'")
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

function fmt(v: number | undefined): string {
  return v === undefined ? '–' : formatValue(Math.round(v * 1e4) / 1e4);
}

/** Experiments best first by `metric` (higher is better); those without it last, by name. */
export function sortExperiments(rows: ExperimentRow[], metric = 'f1_macro'): ExperimentRow[] {
  return [...rows].sort((a, b) => {
    const x = a.metrics[metric];
    const y = b.metrics[metric];
    if (x === undefined || y === undefined)
      return x === y ? a.name.localeCompare(b.name) : x === undefined ? 1 : -1;
    return y - x || a.name.localeCompare(b.name);
  });
}

export interface SectionLimits {
  /** Experiment rows shown at most, best first (default 50). */
  maxRows?: number;
  /**
   * Characters the section may take at most (default 30,000: half of what the sticky comment
   * keeps under GitHub's 65,536-character limit, the report taking the rest).
   */
  maxChars?: number;
}

export const DEFAULT_SECTION_LIMITS = { maxRows: 50, maxChars: 30_000 } as const;

/**
 * The section's Markdown (heading included): the best `maxRows` experiments, as many of them as
 * fit in `maxChars`, then a line saying how many more there are and how to list them all.
 */
export function renderExperimentsSection(
  s: ExperimentsSection,
  metric = 'f1_macro',
  limits: SectionLimits = {},
): string {
  const { maxRows, maxChars } = { ...DEFAULT_SECTION_LIMITS, ...limits };
  const columns = [metric, ...COLUMNS.filter((c) => c !== metric)];
  const title = `### Experiments (${s.experiments.length}, against the PR head \`${s.head.slice(0, 7)}\`)`;
  if (s.experiments.length === 0) return `${title}\n\n_No experiments from this head yet._`;
  const header = ['#', 'experiment', 'params', ...columns, 'status'];
  const lines = [
    `| ${header.join(' | ')} |`,
    `|---:|---|---|${columns.map(() => '---:').join('|')}|---|`,
    `| | **PR head** | | ${columns.map((c) => fmt(s.headMetrics[c])).join(' | ')} | |`,
  ];
  const footer = `<sub>Sorted by ${metric}, best first; Δ against the PR head.</sub>`;
  const more = (n: number) =>
    `_${n} more experiment${n === 1 ? '' : 's'} not shown (best ${s.experiments.length - n} of ${s.experiments.length}). All of them: \`npx lockstep exp pull origin && npx lockstep exp show --rev ${s.head.slice(0, 7)} --sort ${metric}\`._`;
  // Room for everything but the rows, with the longest "more" line.
  let room = maxChars - title.length - footer.length - more(s.experiments.length).length - 8;
  room -= lines.reduce((n, l) => n + l.length + 1, 0);
  // Not even the table's header fits: the count and the command that lists them.
  if (room <= 0) return `${title}\n\n${more(s.experiments.length)}`;
  let shown = 0;
  for (const [i, e] of sortExperiments(s.experiments, metric).entries()) {
    if (i >= maxRows) break;
    const params = Object.entries(e.params)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(', ');
    const cells = columns.map((c) => {
      const d = formatDelta(s.headMetrics[c], e.metrics[c]);
      return `${fmt(e.metrics[c])}${d ? ` (${d})` : ''}`;
    });
    const row = `| ${i + 1} | ${escapeCell(e.name)} | ${escapeCell(params) || '–'} | ${cells.join(' | ')} | ${escapeCell(e.status)} |`;
    if (row.length + 1 > room) break;
    room -= row.length + 1;
    lines.push(row);
    shown++;
  }
  const left = s.experiments.length - shown;
  return `${title}\n\n${lines.join('\n')}\n\n${left > 0 ? `${more(left)}\n\n` : ''}${footer}`;
}

/** The experiments recorded on top of `rev` (default HEAD) and that commit's evaluate metrics. */
export async function experimentsForHead(repo: Repo, rev = 'HEAD'): Promise<ExperimentsSection> {
  const head = await resolveRev(repo.root, rev);
  const lock = await lockfileAtRev(repo, head);
  const headMetrics = { ...(lock.stages.evaluate?.metrics ?? {}) };
  const experiments = (await listExperiments(repo.root))
    .filter((e) => e.baseline === head && e.kind === 'run')
    .map((e) => ({ name: e.name, params: e.overrides, metrics: e.metrics, status: e.status }));
  return { head, headMetrics, experiments };
}

/**
 * Writes the Experiments section of `s` into the PR's sticky comment, cut to the room the rest
 * of the comment leaves under GitHub's limit (and to the default limits).
 */
export function publishExperimentsSection(
  client: IssueCommentsClient,
  target: StickyTarget,
  s: ExperimentsSection,
  metric = 'f1_macro',
): Promise<StickyResult> {
  return upsertStickySection(client, target, 'experiments', (room) =>
    renderExperimentsSection(s, metric, {
      maxChars: Math.max(0, Math.min(DEFAULT_SECTION_LIMITS.maxChars, room)),
    }),
  );
}
