/**
 * The tuning report: a Markdown table of trials, and the Vega-Lite plots (templates in
 * lib/plots/study-templates.ts) of the objective per trial and of each tuned param against it.
 */
import type { TopLevelSpec } from 'vega-lite';
import { tuneObjectiveSpec, tuneParamsSpec, type TrialPoint } from '../plots/study-templates.ts';
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

/** The study's trials as the plot templates take them. */
function trialPoints(study: StudyResult): TrialPoint[] {
  return study.trials.map((t) => ({
    trial: t.number,
    value: t.value,
    status: t.pruned ? 'pruned' : t.number === 0 ? 'baseline' : 'complete',
    params: t.params,
  }));
}

/** Objective per trial (pruned trials marked); the template is in lib/plots/study-templates.ts. */
export function objectiveSpec(study: StudyResult, config: StudyConfig): TopLevelSpec {
  return tuneObjectiveSpec(config.objective, trialPoints(study));
}

/** Each tuned param against the objective, one panel per param. */
export function paramsSpec(study: StudyResult, config: StudyConfig): TopLevelSpec {
  return tuneParamsSpec(config.objective, Object.keys(config.space), trialPoints(study));
}
