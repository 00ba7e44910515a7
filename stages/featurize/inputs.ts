/**
 * What featurize reads from upstream stages: the ingest manifest (files, labels, speakers,
 * splits) and the validate report's `excluded` list. Only the fields featurize needs are
 * checked; the owning stages define the full formats.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { StageError } from '../../lib/errors.ts';
import { checkValue } from '../../lib/yaml-source.ts';

const manifestFileSchema = z.looseObject({
  path: z.string(),
  label: z.string(),
  speaker: z.string(),
  split: z.string(),
  error: z.string().optional(),
});

const manifestSchema = z.looseObject({
  version: z.literal(1),
  files: z.array(manifestFileSchema),
  splits: z.record(z.string(), z.array(z.string())).optional(),
});

const reportSchema = z.looseObject({
  excluded: z.array(z.string()).default([]),
});

export type ManifestFile = z.infer<typeof manifestFileSchema>;
export type Manifest = z.infer<typeof manifestSchema>;

function readJson(file: string, where: string, fix: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StageError('featurize', `${where}: cannot read (${code}). ${fix}`, [], err);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StageError('featurize', `${where}: not valid JSON. ${fix}`, [], err);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string, fix: string): T {
  const checked = checkValue(schema, value, where, { suffix: `. ${fix.replace(/\.$/, '')}` });
  if (checked.ok) return checked.data;
  throw new StageError('featurize', checked.lines.join('\n'));
}

/** Reads `out/ingest/manifest.json`; `where` is its repository-relative path for messages. */
export function readManifest(file: string, where: string): Manifest {
  const fix = 'Re-run the ingest stage.';
  return parse(manifestSchema, readJson(file, where, fix), where, fix);
}

/** The set of repository-relative paths validation excluded. */
export function readExcluded(file: string, where: string): Set<string> {
  const fix = 'Re-run the validate stage.';
  return new Set(parse(reportSchema, readJson(file, where, fix), where, fix).excluded);
}
