/** The `ingest` stage as an action: `lockstep repro ingest`, outputs and a job summary. */
import { runPipelineAction } from '../../_shared/stage.ts';

export function run(): Promise<void> {
  return runPipelineAction({ targets: ['ingest'], title: 'ingest' });
}
