/**
 * What a stage action shows after the run, read from the stage outputs (paths from
 * `lib/paths.ts`, shapes from the ML contracts): validation anomalies as file annotations,
 * metrics tables, the gate verdict. Each reader returns Markdown for the job summary and the
 * step outputs; a missing file contributes nothing.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as core from '@actions/core';
import { PATHS } from '../../lib/paths.ts';
import type { GateVerdict } from '../../lib/gate.ts';
import { escapeCell, renderConfusion, renderVerdict, type Confusion } from '../../lib/report/render.ts';
import { slicesMarkdown } from './slices.ts';

export interface StageOutcome {
  /** Markdown sections for the job summary. */
  markdown: string[];
  outputs: Record<string, string>;
}

async function readJson<T>(cwd: string, rel: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path.join(cwd, rel), 'utf8')) as T;
  } catch {
    return undefined;
  }
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(4));

/**
 * Numeric metrics as Markdown: overall metrics in a two-column table, and per-class metrics
 * (`f1.<label>`, `precision.<label>`, ...) as one row per label. Non-numbers are dropped.
 */
export function metricsTable(metrics: Record<string, unknown>): string {
  const numeric = Object.entries(metrics).filter((e): e is [string, number] => typeof e[1] === 'number');
  const overall = numeric.filter(([k]) => !k.includes('.'));
  const perClass = new Map<string, Map<string, number>>();
  const columns: string[] = [];
  for (const [key, value] of numeric) {
    const at = key.indexOf('.');
    if (at < 0) continue;
    const [metric, label] = [key.slice(0, at), key.slice(at + 1)];
    if (!columns.includes(metric)) columns.push(metric);
    if (!perClass.has(label)) perClass.set(label, new Map());
    perClass.get(label)!.set(metric, value);
  }
  const parts = [
    [
      '| metric | value |',
      '| --- | --- |',
      ...overall.map(([k, v]) => `| ${escapeCell(k)} | ${fmt(v)} |`),
    ].join('\n'),
  ];
  if (perClass.size) {
    const rows = [...perClass].map(
      ([label, m]) =>
        `| ${escapeCell(label)} | ${columns.map((c) => (m.has(c) ? fmt(m.get(c)!) : '')).join(' | ')} |`,
    );
    parts.push(
      [
        `| class | ${columns.map(escapeCell).join(' | ')} |`,
        `| --- | ${columns.map(() => '---').join(' | ')} |`,
        ...rows,
      ].join('\n'),
    );
  }
  return parts.join('\n\n');
}

interface Anomaly {
  severity: 'error' | 'warning';
  kind: string;
  file?: string;
  detail: string;
}

/** Annotates each validation anomaly on its file (`core.error` / `core.warning`). */
export async function validateOutcome(cwd: string): Promise<StageOutcome> {
  const report = await readJson<{ ok: boolean; anomalies: Anomaly[]; excluded?: string[] }>(
    cwd,
    `${PATHS.validate}/report.json`,
  );
  if (!report) return { markdown: [], outputs: {} };
  const workspace = process.env.GITHUB_WORKSPACE ?? cwd;
  for (const a of report.anomalies ?? []) {
    // Annotations want a path relative to the repository root, not to working-directory.
    const file = a.file
      ? path.relative(workspace, path.resolve(cwd, a.file)).split(path.sep).join('/')
      : undefined;
    const props = { title: `validate ${a.kind}`, ...(file ? { file } : {}) };
    if (a.severity === 'error') core.error(a.detail, props);
    else core.warning(a.detail, props);
  }
  const errors = report.anomalies.filter((a) => a.severity === 'error').length;
  const warnings = report.anomalies.length - errors;
  const rows = report.anomalies
    .slice(0, 50)
    .map(
      (a) =>
        `| ${a.severity} | ${escapeCell(a.kind)} | ${escapeCell(a.file ?? '')} | ${escapeCell(a.detail)} |`,
    );
  const markdown = [
    `### Validation: ${report.ok ? '✅ ok' : '❌ not ok'} (${errors} errors, ${warnings} warnings, ${report.excluded?.length ?? 0} excluded)`,
  ];
  if (rows.length)
    markdown.push(['| severity | kind | file | detail |', '| --- | --- | --- | --- |', ...rows].join('\n'));
  return {
    markdown,
    outputs: { valid: String(report.ok), errors: String(errors), warnings: String(warnings) },
  };
}

/** Training metrics (backend, epochs, best validation accuracy). */
export async function trainOutcome(cwd: string): Promise<StageOutcome> {
  const metrics = await readJson<Record<string, unknown>>(cwd, `${PATHS.train}/metrics.json`);
  if (!metrics) return { markdown: [], outputs: {} };
  const backend = typeof metrics.backend === 'string' ? ` (backend ${metrics.backend})` : '';
  return {
    markdown: [`### Training${backend}`, metricsTable(metrics)],
    outputs: { 'train-metrics': JSON.stringify(metrics), 'model-dir': PATHS.model },
  };
}

/** Evaluation metrics and the confusion matrix. */
export async function evaluateOutcome(cwd: string): Promise<StageOutcome> {
  const metrics = await readJson<Record<string, unknown>>(cwd, `${PATHS.eval}/metrics.json`);
  const confusion = await readJson<Confusion>(cwd, `${PATHS.eval}/confusion.json`);
  const markdown: string[] = [];
  const outputs: Record<string, string> = {};
  if (metrics) {
    markdown.push('### Evaluation metrics (test split)', metricsTable(metrics));
    outputs.metrics = JSON.stringify(metrics);
    const slices = await slicesMarkdown(cwd);
    if (slices) markdown.push('### Slices (worst first)', slices);
  }
  if (confusion) markdown.push('### Confusion matrix', renderConfusion(confusion));
  return { markdown, outputs };
}

/** The gate verdict with its reasons. */
export async function gateOutcome(cwd: string): Promise<StageOutcome> {
  const verdict = await readJson<GateVerdict>(cwd, `${PATHS.gate}/verdict.json`);
  if (!verdict) return { markdown: [], outputs: {} };
  return {
    markdown: ['### Gate verdict', renderVerdict(verdict)],
    outputs: { passed: String(verdict.passed), verdict: JSON.stringify(verdict) },
  };
}

/** Every stage's outcome, for whole-pipeline runs. */
export async function pipelineOutcome(cwd: string): Promise<StageOutcome> {
  const parts = await Promise.all([
    validateOutcome(cwd),
    trainOutcome(cwd),
    evaluateOutcome(cwd),
    gateOutcome(cwd),
  ]);
  return {
    markdown: parts.flatMap((p) => p.markdown),
    outputs: Object.assign({}, ...parts.map((p) => p.outputs)) as Record<string, string>,
  };
}
