/**
 * The `ingest` stage (like TFX ExampleGen): reads audio from the demo corpus, a local folder or a
 * `gs://` prefix, labels each file (folders, RAVDESS, TESS or CREMA-D names), and writes
 * `out/ingest/manifest.json` with a deterministic speaker-independent split.
 */
import path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic.ts';
import type { StageContext, StageResult } from '../../lib/types.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { downloadPrefix } from './gcs.ts';
import { buildManifest } from './manifest.ts';
import { dataDir, isRemote, STAGING } from './stage.ts';

export { dataDir, ingestStage, isRemote, STAGING } from './stage.ts';

/** The ingest stage's body: downloads a gs:// source, then writes the manifest. */
export async function runIngest(ctx: StageContext): Promise<StageResult> {
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
    ...(p.data.source === 'demo' ? { corpus: 'demo' } : {}),
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
}
