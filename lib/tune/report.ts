/**
 * The tuning report: a Markdown table of trials, and Vega-Lite plots of the objective per trial
 * and of each tuned param against the objective.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { StudyConfig, StudyResult } from './tuner.ts';

function fmt(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  return String(v);
}

export function renderStudyMarkdown(study: StudyResult, config: StudyConfig): string {
  const keys = Object.keys(config.space);
  const lines = [
    `## Tuning: ${config.objective} (${config.direction}), ${config.sampler}, ${study.trials.length} trials in ${study.seconds.toFixed(0)} s`,
    '',
    study.improved
      ? `Best trial ${study.best.number}: ${config.objective} ${fmt(study.best.value)} vs ${fmt(study.baseline.value)} with the current params.`
      : `No trial beat the current params (${config.objective} ${fmt(study.baseline.value)}); params.yaml is unchanged.`,
    '',
    `| trial | ${keys.join(' | ')} | ${config.objective} | epochs | status |`,
    `|---:|${keys.map(() => '---:').join('|')}|---:|---:|---|`,
  ];
  for (const t of study.trials) {
    const status = t.error
      ? `failed: ${t.error}`
      : t.pruned
        ? 'pruned'
        : t.number === 0
          ? 'baseline'
          : t === study.best
            ? 'best'
            : 'complete';
    lines.push(
      `| ${t.number} | ${keys.map((k) => fmt(t.params[k])).join(' | ')} | ${Number.isFinite(t.value) ? fmt(t.value) : '—'} | ${t.epochs} | ${status} |`,
    );
  }
  return lines.join('\n') + '\n';
}

/** Objective per trial (pruned trials marked). */
export function objectiveSpec(study: StudyResult, config: StudyConfig): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `${config.objective} per trial`,
    width: 420,
    height: 220,
    data: {
      values: study.trials
        .filter((t) => Number.isFinite(t.value))
        .map((t) => ({
          trial: t.number,
          value: t.value,
          status: t.pruned ? 'pruned' : t.number === 0 ? 'baseline' : 'complete',
        })),
    },
    mark: { type: 'point', filled: true, size: 80 },
    encoding: {
      x: { field: 'trial', type: 'quantitative', title: 'trial' },
      y: { field: 'value', type: 'quantitative', title: config.objective, scale: { zero: false } },
      color: { field: 'status', type: 'nominal' },
    },
  };
}

/** Each tuned param against the objective, one panel per param. */
export function paramsSpec(study: StudyResult, config: StudyConfig): TopLevelSpec {
  const values = study.trials
    .filter((t) => Number.isFinite(t.value))
    .flatMap((t) =>
      Object.keys(config.space).map((k) => ({
        param: k,
        x: typeof t.params[k] === 'number' ? t.params[k] : String(t.params[k]),
        value: t.value,
        pruned: t.pruned,
      })),
    );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: `params against ${config.objective}`,
    data: { values },
    facet: { field: 'param', type: 'nominal', columns: 3 },
    spec: {
      width: 200,
      height: 160,
      mark: { type: 'point', filled: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: null, scale: { zero: false } },
        y: { field: 'value', type: 'quantitative', title: config.objective, scale: { zero: false } },
        color: { field: 'pruned', type: 'nominal' },
      },
    },
    resolve: { scale: { x: 'independent' } },
  } as TopLevelSpec;
}
