/**
 * The validate reports: `report.json` (machine-readable, read by featurize for `excluded`) and
 * `report.md` (for people, e.g. a pull-request comment).
 */
import type { Anomaly } from './anomalies.ts';
import type { DataSchema } from './schema.ts';
import type { SplitStats } from './stats.ts';

export interface ValidateReport {
  /** False when an error anomaly remains (not excluded). */
  ok: boolean;
  anomalies: Anomaly[];
  /** Files downstream stages must skip (errors, with `validate.on_error: exclude`). */
  excluded: string[];
  summary: { files: number; errors: number; warnings: number; excluded: number };
  onError: 'fail' | 'exclude';
  /** True when this run inferred and wrote the schema. */
  schemaInferred: boolean;
  schema: DataSchema;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Renders the Markdown report. */
export function renderMarkdown(
  report: ValidateReport,
  splits: Record<string, SplitStats>,
  schemaPath: string,
): string {
  const { summary } = report;
  const lines: string[] = [];
  lines.push('# Data validation report', '');
  lines.push(
    report.ok
      ? `**Passed**: ${summary.files} files, ${summary.errors} errors, ${summary.warnings} warnings, ${summary.excluded} excluded.`
      : `**Failed**: ${summary.files} files, ${summary.errors} errors, ${summary.warnings} warnings. Fix the files below, or set \`validate.on_error: exclude\` to skip them.`,
    '',
  );
  if (report.schemaInferred) {
    lines.push(
      `The schema \`${schemaPath}\` was missing: it was inferred from this data and written. Review and commit it.`,
      '',
    );
  }
  lines.push('## Anomalies', '');
  if (report.anomalies.length === 0) {
    lines.push('None.', '');
  } else {
    lines.push('| Severity | Kind | File | Detail |', '| --- | --- | --- | --- |');
    for (const a of report.anomalies) {
      lines.push(
        `| ${a.severity} | ${a.kind} | ${a.file ? `\`${cell(a.file)}\`` : ''} | ${cell(a.detail)} |`,
      );
    }
    lines.push('');
  }
  if (report.excluded.length) {
    lines.push('## Excluded files', '', ...report.excluded.map((p) => `- \`${p}\``), '');
  }
  lines.push('## Splits', '');
  lines.push(
    '| Split | Files | Speakers | Duration mean (min–max) s | RMS mean dBFS | Clipping max | Silence mean |',
    '| --- | ---: | ---: | --- | ---: | ---: | ---: |',
  );
  for (const [name, s] of Object.entries(splits)) {
    lines.push(
      `| ${name} | ${s.files} | ${s.speakers.length} | ${s.duration.mean.toFixed(2)} (${s.duration.min.toFixed(2)}–${s.duration.max.toFixed(2)}) | ${s.rmsDbfs.mean.toFixed(1)} | ${s.clippingRatio.max.toFixed(4)} | ${s.silenceRatio.mean.toFixed(2)} |`,
    );
  }
  lines.push('', '## Label counts', '');
  const names = Object.keys(splits);
  const labels = [
    ...new Set([...report.schema.labels, ...names.flatMap((n) => Object.keys(splits[n].labelCounts))]),
  ].sort();
  lines.push(`| Label | ${names.join(' | ')} |`, `| --- |${names.map(() => ' ---: |').join('')}`);
  for (const l of labels)
    lines.push(`| ${cell(l)} | ${names.map((n) => splits[n].labelCounts[l] ?? 0).join(' | ')} |`);
  lines.push('', '## Schema', '');
  const s = report.schema;
  lines.push(
    `Labels: ${s.labels.join(', ')}. Sample rates: ${s.sample_rates.join(', ')} Hz. Channels: ${s.channels.join(', ')}. ` +
      `Formats: ${s.bit_depths.join(', ')}. Duration: ${s.duration.min}–${s.duration.max} s.`,
    '',
  );
  return lines.join('\n');
}
