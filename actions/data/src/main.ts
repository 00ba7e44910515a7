/** The `data` stage as an action: `lockstep repro data`, outputs and a job summary. */
import { runPipelineAction } from '../../_shared/stage.ts';

export function run(): Promise<void> {
  return runPipelineAction({ targets: ['data'], title: 'data' });
}
