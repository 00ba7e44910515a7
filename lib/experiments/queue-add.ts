/** `exp run --queue`: validates each grid point now (params schema) and records it with HEAD as its base. */
import type { Repo } from '../repo.ts';
import { expandGrid } from './grid.ts';
import { enqueue, type QueueEntry } from './queue.ts';
import { defaultExperimentName, experimentParams, headCommit } from './run.ts';
import { parseComputeOverride } from './workspace.ts';

/** Queues every combination of `pairs` (see grid.ts); `name` gets `-1`, `-2`... for a grid. */
export async function queueExperiments(
  repo: Repo,
  pairs: string[],
  options: { name?: string; pipeline?: string; compute?: string } = {},
): Promise<QueueEntry[]> {
  const compute = parseComputeOverride(options.compute);
  const base = await headCommit(repo);
  const grid = expandGrid(pairs);
  const items = [];
  for (const [i, overrides] of grid.entries()) {
    const name = options.name
      ? grid.length > 1
        ? `${options.name}-${i + 1}`
        : options.name
      : defaultExperimentName(base, overrides);
    items.push({
      name,
      overrides,
      base,
      paramsText: await experimentParams(repo, overrides),
      ...(options.pipeline ? { pipeline: options.pipeline } : {}),
      ...(compute ? { compute } : {}),
    });
  }
  return enqueue(repo, items);
}
