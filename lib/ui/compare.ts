/**
 * Comparing experiments: their params and metrics side by side and a Vega-Lite chart of the
 * metrics, grouped by experiment. {@link compareExperiments} is the one entry the compare view
 * calls, so it can hand over to a plots module (learning curves, confusion matrices) when the
 * revisions' plot data is available.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ExpRow } from '../experiments/show.ts';
import { UsageError } from '../errors.ts';
import { experimentMetricsSpec } from '../plots/study-templates.ts';

export interface Comparison {
  names: string[];
  commits: string[];
  /** Every param any of them set; `differs` when the values are not all the same. */
  params: { key: string; values: unknown[]; differs: boolean }[];
  metrics: { key: string; values: (number | undefined)[] }[];
  /** Metrics grouped by experiment (Vega-Lite). */
  spec: TopLevelSpec;
}

/**
 * The comparison of the rows named `names` (in that order).
 * @throws UsageError when a name is unknown or fewer than two are given.
 */
export function compareExperiments(rows: ExpRow[], names: string[]): Comparison {
  const unique = [...new Set(names)];
  if (unique.length < 2)
    throw new UsageError(
      `exp: compare needs at least two experiments "${unique.join(',')}". Select two or more.`,
    );
  const byName = new Map(rows.map((r) => [r.name, r]));
  const chosen = unique.map((n) => {
    const row = byName.get(n);
    if (!row)
      throw new UsageError(`exp: no experiment or branch named "${n}". Pick one from the experiments page.`);
    return row;
  });
  const paramKeys = [...new Set(chosen.flatMap((r) => Object.keys(r.params)))].sort();
  const params = paramKeys.map((key) => {
    const values = chosen.map((r) => r.params[key]);
    return { key, values, differs: new Set(values.map((v) => JSON.stringify(v))).size > 1 };
  });
  // Differing params first: they are what the comparison is about.
  params.sort((a, b) => Number(b.differs) - Number(a.differs) || (a.key < b.key ? -1 : 1));
  const metricKeys = [...new Set(chosen.flatMap((r) => Object.keys(r.metrics)))].sort();
  const metrics = metricKeys.map((key) => ({ key, values: chosen.map((r) => r.metrics[key]) }));
  const charted = metrics.filter((m) => m.values.some((v) => v !== undefined)).slice(0, 12);
  const spec = experimentMetricsSpec(
    unique,
    charted.flatMap((m) =>
      chosen.flatMap((r, i) =>
        m.values[i] === undefined ? [] : [{ metric: m.key, experiment: r.name, value: m.values[i] }],
      ),
    ),
    charted.map((m) => m.key),
  );
  return { names: unique, commits: chosen.map((r) => r.commit), params, metrics, spec };
}
