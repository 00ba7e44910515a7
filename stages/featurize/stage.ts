/**
 * The `featurize` stage's declaration. Its body (stages/featurize/index.ts: feature extraction,
 * the worker pool) is imported only when the stage runs.
 */
import type { FeaturizeConfig } from '../../lib/ml/features.ts';
import type { StageContext, StageDef } from '../../lib/types.ts';
import type { FeaturizeRunOptions } from './index.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';

/** Validation's report, whose `excluded` files featurize skips. */
export const VALIDATE_REPORT = `${PATHS.validate}/report.json`;

/** The transform's featurize config: exactly the params that shape features (no extra keys). */
export function featurizeConfig(p: Params['featurize']): FeaturizeConfig {
  const { sample_rate, frame_size, hop_size, n_mfcc, n_mel, max_seconds } = p;
  return { sample_rate, frame_size, hop_size, n_mfcc, n_mel, max_seconds };
}

function runOptions(ctx: StageContext): FeaturizeRunOptions {
  return {
    root: ctx.root,
    config: featurizeConfig(ctx.params.featurize as Params['featurize']),
    out: ctx.out,
    signal: ctx.signal,
  };
}

/** Builds the featurize stage for these params. */
export function featurizeStage(params: Params): StageDef {
  const dataDir = params.data.source === 'demo' ? PATHS.demo : params.data.path;
  return {
    name: 'featurize',
    description: 'Meyda-equivalent features per clip, transform (scalers, labels) fitted on train',
    code: [
      'stages/featurize',
      'lib/ml/features.ts',
      'lib/ml/features',
      'lib/ml/features-worker.mjs',
      'lib/ml/transform.ts',
      'lib/ml/dataset.ts',
      'lib/audio/resample.ts',
      'lib/audio/wav.ts',
    ],
    // A gs:// source is mirrored by ingest; only a local data dir is a dependency here.
    deps: [PATHS.manifest, VALIDATE_REPORT, ...(dataDir.startsWith('gs://') ? [] : [dataDir])],
    params: [
      'featurize.sample_rate',
      'featurize.frame_size',
      'featurize.hop_size',
      'featurize.n_mfcc',
      'featurize.n_mel',
      'featurize.max_seconds',
    ],
    outs: [PATHS.features],
    async run(ctx) {
      const { runFeaturize } = await import('./index.ts');
      return runFeaturize(runOptions(ctx));
    },
    shards: {
      async run(ctx, shard, dir) {
        const { runFeaturizeShard } = await import('./shard.ts');
        await runFeaturizeShard(runOptions(ctx), shard, dir);
      },
      async merge(ctx, dirs) {
        const { mergeFeaturizeShards } = await import('./shard.ts');
        return mergeFeaturizeShards(runOptions(ctx), dirs);
      },
    },
  };
}
