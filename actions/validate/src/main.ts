/** The `validate` stage as an action: `lockstep repro validate`, outputs and a job summary. */
import { runPipelineAction } from '../../_shared/stage.ts';
import { validateOutcome } from '../../_shared/results.ts';

export function run(): Promise<void> {
  return runPipelineAction({ targets: ['validate'], title: 'validate', outcome: validateOutcome });
}
