/**
 * The `validate` stage's declaration. Its body (stages/validate/index.ts) is imported only when
 * the stage runs.
 */
import type { StageDef } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { dataDir, isRemote, STAGING } from '../ingest/stage.ts';

/**
 * The data schema the stage infers once and keeps in the repository for review (beside the stage
 * code, so `code` covers it; the core names no stage file).
 */
export const DATA_SCHEMA_FILE = 'stages/validate/schema.yaml';

/** Builds the validate stage for these params. */
export function validateStage(params: Params): StageDef {
  const dir = dataDir(params);
  return {
    name: 'validate',
    description: 'Statistics, schema and anomaly checks of the audio',
    // The schema is an input through `code` (the whole folder) rather than `deps`: the runner
    // requires deps to exist, and a missing schema is valid here (it is inferred and written).
    code: ['stages/validate', 'lib/validation', 'lib/audio/wav.ts', 'stages/ingest/manifest.ts'],
    deps: [PATHS.manifest, isRemote(dir) ? STAGING : dir],
    params: [
      'validate.min_duration_s',
      'validate.max_duration_s',
      'validate.silence_dbfs',
      'validate.max_clipping_ratio',
      'validate.max_class_imbalance',
      'validate.on_error',
    ],
    outs: [PATHS.validate],
    run: async (ctx) => (await import('./index.ts')).runValidate(ctx),
  };
}
