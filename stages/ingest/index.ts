/**
 * The `ingest` stage (like TFX ExampleGen): reads audio from the demo corpus, a local folder or a
 * `gs://` prefix, labels each file (folders, RAVDESS, TESS or CREMA-D names), and writes
 * `out/ingest/manifest.json` with a deterministic speaker-independent split.
 */
import path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic.ts';
import type { StageDef } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { downloadPrefix } from './gcs.ts';
import { buildManifest } from './manifest.ts';

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
    async run(ctx) {
      const p = ctx.params as Params;
      const source = dataDir(p);
      let rootName = source;
      if (isRemote(source)) {
        ctx.out.err(`ingest: downloading ${source} into ${STAGING}`);
        await downloadPrefix(source, ctx.abs(STAGING));
        rootName = STAGING;
      }
      const rootAbs = path.isAbsolute(rootName) ? rootName : path.resolve(ctx.root, rootName);
      const shown = path.isAbsolute(rootName)
        ? rootName
        : path.posix.normalize(rootName.split(path.sep).join('/')).replace(/\/$/, '');
      const manifest = await buildManifest(rootAbs, {
        rootName: shown,
        convention: p.ingest.labels,
        calm: p.ingest.calm,
        train: p.ingest.train,
        validation: p.ingest.validation,
        seed: p.ingest.seed,
      });
      await writeFileAtomic(ctx.abs(PATHS.manifest), JSON.stringify(manifest, null, 2) + '\n');
      const unreadable = manifest.files.filter((f) => f.error).length;
      const s = manifest.splits;
      return {
        summary:
          `${manifest.files.length} files, ${manifest.labels.length} labels, speakers ` +
          `${s.train.length}/${s.validation.length}/${s.test.length} (train/validation/test)` +
          (unreadable ? `, ${unreadable} unreadable` : '') +
          (manifest.skipped.length ? `, ${manifest.skipped.length} skipped` : ''),
      };
    },
  };
}
