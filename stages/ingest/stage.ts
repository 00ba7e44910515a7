/**
 * The `ingest` stage's declaration and the data-location helpers other declarations share. Its
 * body (stages/ingest/index.ts: listing, labels, split, Cloud Storage download) is imported only
 * when the stage runs.
 */
import type { StageDef } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';

/** Where `gs://` data is downloaded (inside the ingest out, so it is cached and locked). */
export const STAGING = `${PATHS.ingest}/staging`;

/** The data folder ingest reads for these params (repository-relative, absolute, or gs://). */
export function dataDir(params: Params): string {
  return params.data.source === 'demo' ? PATHS.demo : params.data.path;
}

/** True for a `gs://` data path. */
export function isRemote(dir: string): boolean {
  return dir.startsWith('gs://');
}

/** Builds the ingest stage for these params. */
export function ingestStage(params: Params): StageDef {
  const dir = dataDir(params);
  return {
    name: 'ingest',
    description: 'List, label and split the audio files (manifest)',
    code: ['stages/ingest', 'lib/audio/wav.ts', 'lib/store/gcs-errors.ts'],
    // A remote prefix is not a local dependency: its objects are pinned by the staged copy's hash.
    deps: isRemote(dir) ? [] : [dir],
    params: [
      'data.source',
      'data.path',
      'ingest.labels',
      'ingest.train',
      'ingest.validation',
      'ingest.seed',
      'ingest.calm',
    ],
    outs: [PATHS.ingest],
    run: async (ctx) => (await import('./index.ts')).runIngest(ctx),
  };
}
