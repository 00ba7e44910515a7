/**
 * The `gate` stage's declaration. Its body (stages/gate/index.ts) is imported only when the
 * stage runs.
 */
import type { StageDef } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { baselineInput } from './baseline.ts';

/** The environment's promotion policy file (repository-relative). */
export function policyFile(env: string): string {
  return `promotion/${env}.yaml`;
}

/** The gate stage for `params`. */
export function gateStage(params: Params): StageDef {
  const env = params.gate.baseline_env;
  return {
    name: 'gate',
    description: `Check evaluate metrics against thresholds and the ${env} baseline`,
    code: [
      'stages/gate',
      'lib/gate.ts',
      'lib/gate-rules.ts',
      'lib/gate-slices.ts',
      'lib/slices',
      'lib/environment/policy.ts',
      'lib/environment/revision.ts',
      'lib/lockfile.ts',
      'lib/pipeline/recorded-slices.ts',
      'lib/git.ts',
    ],
    // The policy holds thresholds and the branch name: editing it re-runs the gate (a missing dep
    // just means the stage always runs).
    // The candidate's predictions pair with the baseline's for change thresholds (a paired bootstrap).
    deps: [`${PATHS.eval}/metrics.json`, `${PATHS.eval}/predictions.json`, policyFile(env)],
    params: ['gate.baseline_env', 'gate.thresholds', 'evaluate.bootstrap'],
    inputs: [baselineInput(env)],
    outs: [PATHS.gate],
    // `passed` (1 or 0) and the failed-threshold count land in the lockfile, so the registry can
    // show every commit's gate verdict without fetching artifacts.
    metrics: [`${PATHS.gate}/metrics.json`],
    run: async (ctx) => (await import('./index.ts')).runGateStage(ctx),
  };
}
