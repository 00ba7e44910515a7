/** The `gate` stage as an action: `lockstep repro gate`, outputs and a job summary. */
import { runPipelineAction } from '../../_shared/stage.ts';
import { gateOutcome } from '../../_shared/results.ts';

export function run(): Promise<void> {
  return runPipelineAction({ targets: ['gate'], title: 'gate', outcome: gateOutcome });
}
