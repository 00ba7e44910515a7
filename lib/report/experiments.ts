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

function escapeCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ').replace(/`/g, "'");
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

/** The section's Markdown (heading included). */
export function renderExperimentsSection(s: ExperimentsSection, metric = 'f1_macro'): string {
  const columns = [metric, ...COLUMNS.filter((c) => c !== metric)];
  const title = `### Experiments (${s.experiments.length}, against the PR head \`${s.head.slice(0, 7)}\`)`;
  if (s.experiments.length === 0) return `${title}\n\n_No experiments from this head yet._`;
  const header = ['#', 'experiment', 'params', ...columns, 'status'];
  const lines = [
    `| ${header.join(' | ')} |`,
    `|---:|---|---|${columns.map(() => '---:').join('|')}|---|`,
    `| | **PR head** | | ${columns.map((c) => fmt(s.headMetrics[c])).join(' | ')} | |`,
  ];
  sortExperiments(s.experiments, metric).forEach((e, i) => {
    const params = Object.entries(e.params)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(', ');
    const cells = columns.map((c) => {
      const d = formatDelta(s.headMetrics[c], e.metrics[c]);
      return `${fmt(e.metrics[c])}${d ? ` (${d})` : ''}`;
    });
    lines.push(
      `| ${i + 1} | ${escapeCell(e.name)} | ${escapeCell(params) || '–'} | ${cells.join(' | ')} | ${escapeCell(e.status)} |`,
    );
  });
  return `${title}\n\n${lines.join('\n')}\n\n<sub>Sorted by ${metric}, best first; Δ against the PR head.</sub>`;
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
