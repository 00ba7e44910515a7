/**
 * `lockstep plots` end to end: collect each revision's data, build the specs, and write them as
 * `<name>.vl.json`, `<name>.svg`, `<name>.png` plus one offline `index.html`.
 */
import path from 'node:path';
import type { Repo } from '../repo.ts';
import { writeFileAtomic } from '../atomic.ts';
import { buildPlots, type NamedPlot } from './build.ts';
import { collectPlotData, type CollectOptions, type RevisionPlotData } from './collect.ts';
import { renderPlotsHtml } from './html.ts';
import { writePlot } from './render.ts';

export interface PlotsResult {
  revisions: Pick<RevisionPlotData, 'rev' | 'commit' | 'env' | 'experiment' | 'notes'>[];
  plots: NamedPlot[];
}

/** Collects `revs` (in order; each once) and builds their plots. */
export async function plotRevisions(
  repo: Repo,
  revs: string[],
  options: CollectOptions = {},
): Promise<PlotsResult> {
  const data: RevisionPlotData[] = [];
  for (const rev of [...new Set(revs)]) data.push(await collectPlotData(repo, rev, options));
  return {
    revisions: data.map(({ rev, commit, env, experiment, notes }) => ({
      rev,
      commit,
      env,
      experiment,
      notes,
    })),
    plots: buildPlots(data),
  };
}

/** Writes every plot's spec, SVG and PNG and `index.html` under `dir`; returns the page's path. */
export async function writePlotsOutput(dir: string, result: PlotsResult): Promise<string> {
  for (const p of result.plots) await writePlot(dir, p.name, p.spec);
  const title = `lockstep plots: ${result.revisions.map((r) => r.rev).join(' vs ')}`;
  const notes = result.revisions.flatMap((r) => r.notes.map((n) => `${r.rev}: ${n}`));
  const page = path.join(dir, 'index.html');
  await writeFileAtomic(page, await renderPlotsHtml(result.plots, { title, notes }));
  return page;
}
