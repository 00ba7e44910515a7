/**
 * The slice section of the PR report and the job summary: the evaluate slices in the working
 * tree (`out/eval/metrics.json`), worst first, with the base revision's slices beside them when
 * they can be read (from its evaluate out by hash: the cache, else the configured remote).
 * Undefined when evaluate has not written slices.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PATHS } from '../../lib/paths.ts';
import { flattenMetrics } from '../../lib/pipeline/metrics.ts';
import { evalMetricsAt } from '../../lib/pipeline/revisions.ts';
import { findRepo } from '../../lib/repo.ts';
import { readEvalMetrics, type EvalMetrics } from '../../lib/slices/shape.ts';
import { defaultRemote } from '../../lib/store/remote-config.ts';
import { renderSlicesSection } from '../../lib/slices/table.ts';

/** Markdown of the slices (with `base`'s beside them, labelled `baseLabel`), or undefined. */
export async function slicesMarkdown(
  cwd: string,
  base?: string,
  baseLabel?: string,
): Promise<string | undefined> {
  const file = path.join(cwd, PATHS.eval, 'metrics.json');
  if (!fs.existsSync(file)) return undefined;
  const candidate = readEvalMetrics(flattenMetrics(JSON.parse(fs.readFileSync(file, 'utf8'))));
  if (Object.keys(candidate.slices).length === 0) return undefined;
  let baseline: EvalMetrics | undefined;
  let note: string | undefined;
  if (base) {
    try {
      const repo = findRepo(cwd);
      const recorded = await evalMetricsAt(repo, base, { remote: await defaultRemote(repo) });
      baseline = recorded.missing ? undefined : recorded;
      // Said under the table: a missing base column is otherwise read as "nothing changed".
      if (recorded.missing) note = `_Base slices not compared: ${recorded.missing}_`;
    } catch {
      // No lockfile at the base (a first PR), or no remote to read it from: the candidate only.
      baseline = undefined;
    }
  }
  const section = renderSlicesSection(candidate, baseline, baseLabel ?? base?.slice(0, 7));
  return note ? `${section}\n\n${note}` : section;
}
