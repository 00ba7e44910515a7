/**
 * The `evaluate` stage's declaration. Its body (stages/evaluate/index.ts: TensorFlow.js, Vega)
 * is imported only when the stage runs.
 */
import type { StageDef } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';

/** The evaluate stage for `params`. */
export function evaluateStage(_params: Params): StageDef {
  return {
    name: 'evaluate',
    description: 'Score the model on held-out speakers; confusion matrix and plots',
    code: ['stages/evaluate', 'lib/ml', 'lib/slices'],
    // The manifest gives each test clip's slice attributes (gender, corpus, duration, format).
    deps: [PATHS.model, PATHS.features, PATHS.train, PATHS.manifest],
    params: ['evaluate.slices', 'evaluate.bootstrap'],
    outs: [PATHS.eval],
    metrics: [`${PATHS.eval}/metrics.json`],
    // The headline metrics and their intervals go to the lockfile; the per-slice figures stay in
    // metrics.json, read from the out by hash where they are shown or gated.
    outOnlyMetrics: ['slices'],
    run: async (ctx) => (await import('./index.ts')).runEvaluateStage(ctx),
  };
}
