/** The compute part of a run summary: where each stage ran, wall time, machine-hours by type. */
import type { RunReport } from '../pipeline/run.ts';

/** Lines like `compute: featurize vertex 3 x n1-standard-4 41.2 s`; empty when nothing ran remotely. */
export function formatComputeSummary(report: Pick<RunReport, 'stages'>): string[] {
  const ran = report.stages.filter((s) => s.status === 'ran');
  if (!ran.some((s) => s.facts?.compute === 'vertex')) return [];
  const lines = ['compute:'];
  const hours = new Map<string, number>();
  for (const s of ran) {
    const f = s.facts ?? {};
    const where =
      f.compute === 'vertex'
        ? `vertex ${f.replicas} x ${f.machine_type}${f.accelerator ? ` + ${f.accelerator}` : ''}`
        : 'local';
    lines.push(`  ${s.name.padEnd(10)} ${where.padEnd(28)} ${(s.durationMs / 1000).toFixed(1)} s`);
    if (f.compute === 'vertex') {
      const type = String(f.machine_type);
      hours.set(type, (hours.get(type) ?? 0) + Number(f.machine_hours ?? 0));
    }
  }
  for (const [type, h] of hours) lines.push(`  machine-hours ${type}: ${h.toFixed(4)}`);
  return lines;
}
