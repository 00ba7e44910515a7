/**
 * The speech-emotion pipeline: data → ingest → validate → featurize → train → evaluate → gate.
 * Stage order here is only for display; the runner derives the DAG from deps and outs.
 */
import type { StageDef } from '../lib/types.ts';
import type { Params } from '../lib/params-schema.ts';
import { dataStage } from './data/stage.ts';
import { ingestStage } from './ingest/stage.ts';
import { validateStage } from './validate/stage.ts';
import { featurizeStage } from './featurize/stage.ts';
import { trainStage } from './train/stage.ts';
import { evaluateStage } from './evaluate/stage.ts';
import { gateStage } from './gate/stage.ts';

/** The stages for these params (the data stage only when `data.source` is `demo`). */
export function pipeline(params: Params): StageDef[] {
  const stages: StageDef[] = [];
  if (params.data.source === 'demo') stages.push(dataStage(params));
  stages.push(
    ingestStage(params),
    validateStage(params),
    featurizeStage(params),
    trainStage(params),
    evaluateStage(params),
    gateStage(params),
  );
  return stages;
}
