/**
 * The `data` stage's declaration. Its body (stages/data/index.ts: eSpeak NG, rendering) is
 * imported only when the stage runs, so planning and `status` load none of it.
 */
import type { StageDef } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';

/** Builds the data stage for these params. */
export function dataStage(params: Params): StageDef {
  void params;
  return {
    name: 'data',
    description: 'Synthesize the demo speech-emotion corpus (eSpeak NG, TESS layout)',
    code: ['stages/data', 'lib/audio/wav.ts'],
    deps: [],
    params: ['data.speakers', 'data.words', 'data.seed', 'data.noise', 'data.sample_rate'],
    outs: [PATHS.demo],
    run: async (ctx) => (await import('./index.ts')).runData(ctx),
  };
}
