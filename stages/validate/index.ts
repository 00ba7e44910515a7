/**
 * The `validate` stage (StatisticsGen + SchemaGen + ExampleValidator): measures every file in the
 * manifest, checks it against `stages/validate/schema.yaml` (inferred and written when missing)
 * and the `validate.*` limits, and writes `out/validate/{report.json,report.md,stats.json}` and
 * `out/validate/schema.json` (the schema and limits, which train ships inside the model so that
 * serving checks inputs with the same rules; see lib/validation).
 * Error anomalies fail the stage after the reports are written, unless `validate.on_error:
 * exclude`, which lists the files in `excluded` for featurize to skip.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, StageError, formatProblem } from '../../lib/errors.ts';
import { writeFileAtomic } from '../../lib/atomic.ts';
import type { StageContext } from '../../lib/types.ts';
import type { IngestManifest } from '../ingest/manifest.ts';
import { EMOTIONS, type Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { DATA_SCHEMA_FILE } from './stage.ts';
import { datasetAnomalies, fileAnomalies, sortAnomalies, type Anomaly } from './anomalies.ts';
import { renderMarkdown, type ValidateReport } from './report.ts';
import { inferDataSchema, readDataSchema, writeDataSchema } from './schema.ts';
import { INPUT_SCHEMA_FILE, writeInputSchema } from '../../lib/validation/schema.ts';
import { aggregateStats, measureFile, type FileStats } from './stats.ts';

export { validateStage } from './stage.ts';

async function readManifest(file: string): Promise<IngestManifest> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as IngestManifest;
  } catch (err) {
    throw new ConfigError(
      formatProblem(
        PATHS.manifest,
        'cannot read the manifest',
        (err as Error).message.split('\n')[0],
        'Run the ingest stage first.',
      ),
    );
  }
}

/** Folders under the data root that hold no `.wav` file at any depth (e.g. an empty label folder). */
async function emptyFolders(rootAbs: string, rootName: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<boolean> => {
    let has = false;
    let entries;
    try {
      entries = await readdir(path.join(rootAbs, rel), { withFileTypes: true });
    } catch {
      return true;
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue; // hidden entries are not data (ingest ignores them too)
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) has = (await walk(child)) || has;
      else if (e.isFile() && /\.wav$/i.test(e.name)) has = true;
    }
    if (!has && rel) out.push(path.posix.join(rootName, rel));
    return has;
  };
  await walk('');
  return out.sort();
}

/** The validate stage's body: statistics, schema, anomalies, then the reports. */
export async function runValidate(ctx: StageContext): Promise<{ summary: string }> {
  const p = (ctx.params as Params).validate;
  const manifest = await readManifest(ctx.abs(PATHS.manifest));
  const resolve = (rel: string): string => (path.isAbsolute(rel) ? rel : path.resolve(ctx.root, rel));

  // Statistics per file.
  const files: FileStats[] = [];
  for (const f of manifest.files) {
    ctx.signal.throwIfAborted();
    const meta = { path: f.path, label: f.label, speaker: f.speaker, split: f.split };
    let bytes: Uint8Array;
    try {
      bytes = await readFile(resolve(f.path));
    } catch (err) {
      files.push({
        ...measureFile(new Uint8Array(0), meta, p.silence_dbfs),
        error: `missing: ${(err as NodeJS.ErrnoException).code ?? 'cannot read'}; re-run ingest`,
      });
      continue;
    }
    files.push(measureFile(bytes, meta, p.silence_dbfs));
  }

  // Schema: the reviewed one in the repository, or inferred now and written for review.
  const schemaFile = ctx.abs(DATA_SCHEMA_FILE);
  let schema = await readDataSchema(schemaFile, DATA_SCHEMA_FILE);
  const schemaInferred = schema === undefined;
  if (!schema) {
    schema = inferDataSchema(files, EMOTIONS, { min: p.min_duration_s, max: p.max_duration_s });
    await writeDataSchema(schemaFile, schema);
    ctx.out.err(
      `validate: ${DATA_SCHEMA_FILE} was missing; inferred it from the data and wrote it. Review and commit it.`,
    );
  }

  // Anomalies: per file, then for the dataset once the excluded files are known.
  const perFile = files.flatMap((f) => fileAnomalies(f, schema, p));
  const excluded = new Set<string>();
  if (p.on_error === 'exclude')
    for (const a of perFile) if (a.severity === 'error' && a.file) excluded.add(a.file);
  const folders = await emptyFolders(resolve(manifest.root), manifest.root);
  const anomalies: Anomaly[] = sortAnomalies([
    ...perFile,
    ...datasetAnomalies(files, manifest.splits, schema, p, excluded),
    ...folders.map((folder): Anomaly => ({
      severity: 'warning',
      kind: 'empty_folder',
      file: folder,
      detail: 'folder holds no .wav file',
    })),
  ]);
  const errors = anomalies.filter((a) => a.severity === 'error');
  const unhandled = errors.filter((a) => !a.file || !excluded.has(a.file));
  const report: ValidateReport = {
    ok: unhandled.length === 0,
    anomalies,
    excluded: [...excluded].sort(),
    summary: {
      files: files.length,
      errors: errors.length,
      warnings: anomalies.length - errors.length,
      excluded: excluded.size,
    },
    onError: p.on_error,
    schemaInferred,
    schema,
  };

  // Reports first, so a failing run still explains itself.
  const splits = {
    all: aggregateStats(files),
    train: aggregateStats(files.filter((f) => f.split === 'train')),
    validation: aggregateStats(files.filter((f) => f.split === 'validation')),
    test: aggregateStats(files.filter((f) => f.split === 'test')),
  };
  const outDir = ctx.abs(PATHS.validate);
  await writeFileAtomic(
    path.join(outDir, 'stats.json'),
    JSON.stringify({ version: 1, files, splits }, null, 2) + '\n',
  );
  await writeFileAtomic(path.join(outDir, 'report.md'), renderMarkdown(report, splits, DATA_SCHEMA_FILE));
  await writeFileAtomic(path.join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await writeInputSchema(path.join(outDir, INPUT_SCHEMA_FILE), {
    version: 1,
    data: schema,
    limits: {
      min_duration_s: p.min_duration_s,
      max_duration_s: p.max_duration_s,
      silence_dbfs: p.silence_dbfs,
      max_clipping_ratio: p.max_clipping_ratio,
    },
  });

  if (!report.ok) {
    const named = [...new Set(unhandled.map((a) => a.file ?? a.kind))].sort();
    const shown =
      named
        .slice(0, 3)
        .map((s) => `"${s}"`)
        .join(', ') + (named.length > 3 ? ` (+${named.length - 3} more)` : '');
    const kinds = [...new Set(unhandled.map((a) => a.kind))].join(', ');
    throw new StageError(
      'validate',
      `${PATHS.validate}/report.md: ${unhandled.length} data error${unhandled.length === 1 ? '' : 's'} (${kinds}) in ${shown}. ` +
        'Fix or remove those files, or set validate.on_error: exclude to skip them.',
    );
  }
  const warnings = report.summary.warnings;
  return {
    summary:
      `${files.length} files ok, ${warnings} warning${warnings === 1 ? '' : 's'}` +
      (excluded.size ? `, ${excluded.size} excluded` : '') +
      (schemaInferred ? `, schema inferred into ${DATA_SCHEMA_FILE}` : ''),
  };
}
