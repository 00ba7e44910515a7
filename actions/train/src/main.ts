/** The `train` stage as an action: `lockstep repro train`, outputs and a job summary. */
import { runPipelineAction } from '../../_shared/stage.ts';
import { trainOutcome } from '../../_shared/results.ts';

export function run(): Promise<void> {
  return runPipelineAction({ targets: ['train'], title: 'train', outcome: trainOutcome });
}
