/**
 * The `train` stage's declaration. Its body (stages/train/index.ts: TensorFlow.js) is imported
 * only when the stage runs.
 */
import type { StageDef } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';

export const TRAIN_PARAM_KEYS = [
  'train.arch',
  'train.epochs',
  'train.batch_size',
  'train.lr',
  'train.units',
  'train.dropout',
  'train.l2',
  'train.patience',
  'train.seed',
  'train.backend',
];

/** The train stage for `params`. */
export function trainStage(params: Params): StageDef {
  return {
    name: 'train',
    description: `Train the ${params.train.arch} classifier with TensorFlow.js (seeded, early stopping)`,
    code: ['stages/train', 'lib/ml'],
    deps: [PATHS.features, PATHS.inputSchema],
    params: TRAIN_PARAM_KEYS,
    outs: [PATHS.model, PATHS.train],
    metrics: [`${PATHS.train}/metrics.json`],
    run: async (ctx) => (await import('./index.ts')).runTrainStage(ctx, params),
  };
}
