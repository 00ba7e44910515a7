/** The `evaluate` stage as an action: `lockstep repro evaluate`, outputs and a job summary. */
import { runPipelineAction } from '../../_shared/stage.ts';
import { evaluateOutcome } from '../../_shared/results.ts';

export function run(): Promise<void> {
  return runPipelineAction({ targets: ['evaluate'], title: 'evaluate', outcome: evaluateOutcome });
}
