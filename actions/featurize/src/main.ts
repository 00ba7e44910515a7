/** The `featurize` stage as an action: `lockstep repro featurize`, outputs and a job summary. */
import { runPipelineAction } from '../../_shared/stage.ts';

export function run(): Promise<void> {
  return runPipelineAction({ targets: ['featurize'], title: 'featurize' });
}
