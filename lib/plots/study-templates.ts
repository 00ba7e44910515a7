/**
 * Plots of many runs: a tuning study's objective per trial and each tuned param against it, and
 * the dashboard's metrics grouped by experiment.
 */
import type { TopLevelSpec } from 'vega-lite';
import { VEGA_LITE_SCHEMA } from './templates.ts';

/** One trial of a tuning study, as its plots need it. */
export interface TrialPoint {
  trial: number;
  /** The objective; non-finite for a failed trial (left out of the plots). */
  value: number;
  /** `baseline`, `pruned` or `complete`. */
  status: string;
  params: Record<string, unknown>;
}

/** A tuning study's objective per trial, coloured by status (pruned trials marked). */
export function tuneObjectiveSpec(objective: string, trials: TrialPoint[]): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: `${objective} per trial`,
    width: 420,
    height: 220,
    data: {
      values: trials
        .filter((t) => Number.isFinite(t.value))
        .map((t) => ({ trial: t.trial, value: t.value, status: t.status })),
    },
    mark: { type: 'point', filled: true, size: 80 },
    encoding: {
      x: { field: 'trial', type: 'quantitative', title: 'trial' },
      y: { field: 'value', type: 'quantitative', title: objective, scale: { zero: false } },
      color: { field: 'status', type: 'nominal' },
    },
  };
}

/**
 * Each tuned param (`keys`) against the objective, one panel per param: a numeric param on a
 * quantitative axis, a choice (strings, booleans) on a nominal one, so no panel drops its points.
 */
export function tuneParamsSpec(objective: string, keys: string[], trials: TrialPoint[]): TopLevelSpec {
  const done = trials.filter((t) => Number.isFinite(t.value));
  const values = done.flatMap((t) =>
    keys.map((k) => ({
      param: k,
      x: typeof t.params[k] === 'number' ? t.params[k] : String(t.params[k]),
      value: t.value,
      pruned: t.status === 'pruned',
    })),
  );
  const numeric = (k: string) => done.every((t) => typeof t.params[k] === 'number');
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: `params against ${objective}`,
    data: { values },
    columns: 3,
    concat: keys.map((k) => ({
      width: 200,
      height: 160,
      transform: [{ filter: { field: 'param', equal: k } }],
      mark: { type: 'point', filled: true },
      encoding: {
        x: numeric(k)
          ? { field: 'x', type: 'quantitative', title: k, scale: { zero: false } }
          : { field: 'x', type: 'nominal', title: k },
        y: { field: 'value', type: 'quantitative', title: objective, scale: { zero: false } },
        color: { field: 'pruned', type: 'nominal' },
      },
    })),
  } as TopLevelSpec;
}

/** Metrics grouped by experiment (the dashboard's compare view): one group per metric, in `metrics` order. */
export function experimentMetricsSpec(
  experiments: string[],
  values: { metric: string; experiment: string; value: number }[],
  metrics: string[],
): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Metrics by experiment',
    data: { values },
    width: Math.max(240, 36 * metrics.length * Math.min(experiments.length, 6)),
    height: 220,
    mark: 'bar',
    encoding: {
      x: { field: 'metric', type: 'nominal', title: null, sort: metrics },
      xOffset: { field: 'experiment', type: 'nominal', sort: experiments },
      y: { field: 'value', type: 'quantitative' },
      color: { field: 'experiment', type: 'nominal', sort: experiments },
      tooltip: [{ field: 'experiment' }, { field: 'metric' }, { field: 'value' }],
    },
  };
}
