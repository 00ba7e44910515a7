/**
 * Reads the report's comparison: the base revision's evaluate metrics, learning curves and
 * slices from its lockfile and the cache or remote (no checkout), and the head's from the
 * workspace, through the same reader as `lockstep plots` (lib/plots/collect.ts).
 */
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import { collectPlotData, WORKSPACE, type RevisionPlotData } from '../plots/collect.ts';
import type { Comparison, ReportRevision } from './headline.ts';

function toReportRevision(d: RevisionPlotData, label: string): ReportRevision {
  return { label, metrics: d.metrics, history: d.history, slices: d.slices };
}

/**
 * The comparison of the workspace (`head`) against `base` (omitted: head only). `baseLabel` and
 * `headLabel` name the sides in tables and legends. Notes say what a side lacked.
 */
export async function readComparison(
  repo: Repo,
  base: string | undefined,
  options: { remote?: Remote; baseLabel?: string; headLabel?: string } = {},
): Promise<{ comparison: Comparison; notes: string[] }> {
  const head = await collectPlotData(repo, WORKSPACE, { remote: options.remote });
  const notes = head.notes.map((n) => `head: ${n}`);
  let baseSide: ReportRevision | undefined;
  if (base) {
    const b = await collectPlotData(repo, base, { remote: options.remote });
    notes.push(...b.notes.map((n) => `base: ${n}`));
    baseSide = toReportRevision(b, options.baseLabel ?? base);
  }
  return {
    comparison: {
      ...(baseSide ? { base: baseSide } : {}),
      head: toReportRevision(head, options.headLabel ?? 'head'),
    },
    notes,
  };
}
