/** The whole pipeline as an action: `lockstep repro [stages...]`, outputs and a job summary. */
import * as core from '@actions/core';
import { runPipelineAction } from '../../_shared/stage.ts';
import { pipelineOutcome } from '../../_shared/results.ts';

export function run(): Promise<void> {
  const targets = core.getInput('stages').split(/\s+/).filter(Boolean);
  return runPipelineAction({
    targets,
    title: targets.length ? `repro ${targets.join(' ')}` : 'repro',
    outcome: pipelineOutcome,
    allowRunInput: 'allow-run',
  });
}
