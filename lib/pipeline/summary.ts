/**
 * The end-of-run summary `lockstep start` prints: stages (ran, restored or skipped, and why),
 * metrics recorded in the lockfile, the gate verdict, and the plot files.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import { readLockfile } from '../lockfile.ts';
import { lockfileMetrics } from './metrics.ts';
import { formatValue } from './diff.ts';
import { formatReport, type RunReport, type StageOutcome } from './run.ts';
import { renderSliceTable, sliceRows, type SliceRow } from '../slices/table.ts';
import { recordedEvalMetrics } from './recorded-slices.ts';

/** Slice, interval and bootstrap keys: shown as the slice table, not one line each. */
const NESTED_METRIC = /^[^.]+\.(slices|intervals|bootstrap)\./;

/** Where the evaluate stage writes its plots. */
export const PLOTS_DIR = 'out/eval/plots';

export interface RunSummary {
  ok: boolean;
  stages: StageOutcome[];
  metrics: Record<string, number>;
  /** Evaluate's slices, worst first (from its out: the lockfile records headline metrics only). */
  slices: SliceRow[];
  /** The verdict of the gate (the stage named `gate`, or any stage that said no). */
  gate?: { stage: string; passed: boolean; summary: string };
  plots: string[];
  failures: RunReport['failures'];
}

function listPlots(repo: Repo): string[] {
  const dir = path.join(repo.root, PLOTS_DIR);
  try {
    return fs
      .readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => `${PLOTS_DIR}/${e.name}`)
      .sort();
  } catch {
    return [];
  }
}

/** Gathers the summary of a finished run. */
export async function summarizeRun(repo: Repo, report: RunReport): Promise<RunSummary> {
  const refused = report.stages.find((s) => s.refused);
  const gateStage = refused ?? report.stages.find((s) => s.name === 'gate');
  const gate =
    gateStage && gateStage.status !== 'failed' && gateStage.status !== 'not run'
      ? { stage: gateStage.name, passed: !gateStage.refused, summary: gateStage.summary ?? gateStage.reason }
      : undefined;
  const lockfile = readLockfile(repo);
  const evaluate = await recordedEvalMetrics(repo, lockfile, { label: 'workspace' });
  return {
    ok: report.ok,
    stages: report.stages,
    metrics: lockfileMetrics(lockfile),
    slices: sliceRows(evaluate),
    ...(gate ? { gate } : {}),
    plots: listPlots(repo),
    failures: report.failures,
  };
}

/** Human lines for the summary. */
export function formatSummary(s: RunSummary): string[] {
  const lines = ['stages:', ...formatReport({ stages: s.stages } as RunReport).map((l) => `  ${l}`)];
  const keys = Object.keys(s.metrics).filter((k) => !NESTED_METRIC.test(k));
  if (keys.length > 0) {
    const width = Math.max(...keys.map((k) => k.length));
    const ci = (k: string): string => {
      const lo = s.metrics[k.replace(/^([^.]+)\./, '$1.intervals.') + '.lo'];
      const hi = s.metrics[k.replace(/^([^.]+)\./, '$1.intervals.') + '.hi'];
      return lo !== undefined && hi !== undefined ? `  [${formatValue(lo)}, ${formatValue(hi)}]` : '';
    };
    lines.push('metrics:', ...keys.map((k) => `  ${k.padEnd(width)}  ${formatValue(s.metrics[k])}${ci(k)}`));
  }
  if (s.slices.length > 0) {
    lines.push(
      'slices (worst first):',
      ...renderSliceTable(s.slices)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  if (s.gate) lines.push(`gate: ${s.gate.passed ? 'PASSED' : 'FAILED'} - ${s.gate.summary}`);
  else if (s.failures.length === 0) lines.push('gate: no gate stage in this pipeline');
  if (s.plots.length > 0) lines.push('plots:', ...s.plots.map((p) => `  ${p}`));
  for (const f of s.failures) {
    lines.push(
      `FAILED: ${f.stage}: ${f.message}${f.skipped.length ? ` (skipped: ${f.skipped.join(', ')})` : ''}`,
    );
  }
  return lines;
}
