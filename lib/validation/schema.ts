/**
 * The data schema (like TFX SchemaGen) and the input schema a model ships with.
 *
 * - `stages/validate/schema.yaml`: what the training audio is expected to look like (labels,
 *   formats, durations), kept in the repository so changes to it are reviewed.
 * - `<model dir>/schema.json`: that data schema plus the `validate.*` limits training used,
 *   written by validate into `out/validate/schema.json` and copied into `out/model/` by train,
 *   so a served model checks its inputs against its own training schema.
 */
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigError, formatProblem } from '../errors.ts';
import { validateParams } from '../params-schema.ts';
import { writeFileAtomic } from '../atomic.ts';
import { parseValue } from '../yaml-source.ts';

export const dataSchemaSchema = z
  .object({
    version: z.literal(1),
    /** Labels a file may carry. */
    labels: z.array(z.string()).min(1),
    /** Expected sample rates (others are converted by featurize: a warning). */
    sample_rates: z.array(z.number().int().positive()).min(1),
    /** Expected channel counts (others are downmixed by featurize: a warning). */
    channels: z.array(z.number().int().positive()).min(1),
    /** Expected sample formats ("16", "24", "32", "32f", ...; others are converted: a warning). */
    bit_depths: z.array(z.string()).min(1),
    /** Expected duration range in seconds (outside it: a warning; the hard limits are params). */
    duration: z.object({ min: z.number().min(0), max: z.number().positive() }).strict(),
  })
  .strict();

export type DataSchema = z.infer<typeof dataSchemaSchema>;

/** The `validate.*` limits a single clip is checked against. */
export const clipLimitsSchema = validateParams
  .pick({ min_duration_s: true, max_duration_s: true, silence_dbfs: true, max_clipping_ratio: true })
  .required()
  .strict();

export type ClipLimits = z.infer<typeof clipLimitsSchema>;

/** `schema.json` in a model directory. */
export const inputSchemaSchema = z
  .object({
    version: z.literal(1),
    data: dataSchemaSchema,
    limits: clipLimitsSchema,
  })
  .strict();

export type InputSchema = z.infer<typeof inputSchemaSchema>;

/** File name of the input schema, in `out/validate/` and in every model directory. */
export const INPUT_SCHEMA_FILE = 'schema.json';

/** What one clip is checked against, and where that came from (for logs and messages). */
export interface InputChecks {
  /** Expected formats and durations; undefined: only the limits are checked. */
  data?: DataSchema;
  limits: ClipLimits;
  /** `<dir>/schema.json`, or why the defaults apply. */
  source: string;
}

/** The checks of a model directory without `schema.json`: the default limits, no format schema. */
export function defaultInputChecks(why = 'no input schema'): InputChecks {
  const p = validateParams.parse({});
  return {
    limits: {
      min_duration_s: p.min_duration_s,
      max_duration_s: p.max_duration_s,
      silence_dbfs: p.silence_dbfs,
      max_clipping_ratio: p.max_clipping_ratio,
    },
    source: `default validate limits (${why})`,
  };
}

/** `raw` against `schema`: every problem at once, one line each with its line in `text`. */
function parseWith<T>(schema: z.ZodType<T>, raw: unknown, text: string, shownAs: string, fix: string): T {
  return parseValue(schema, raw, shownAs, { text, suffix: `, or ${fix.replace(/\.$/, '')}` }) as T;
}

/** Reads the data schema, or returns undefined when the file does not exist. */
export async function readDataSchema(file: string, shownAs: string): Promise<DataSchema | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(
      formatProblem(shownAs, 'cannot read', (err as Error).message, 'Check the file permissions.'),
    );
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(
      formatProblem(
        shownAs,
        'not valid YAML',
        (err as Error).message.split('\n')[0],
        'Fix the syntax, or delete the file to infer it again.',
      ),
    );
  }
  return parseWith(dataSchemaSchema, raw, text, shownAs, 'delete the file to infer it again.');
}

/** Writes the data schema with a header that says where it came from. */
export async function writeDataSchema(file: string, schema: DataSchema): Promise<void> {
  const header =
    '# Data schema checked by the validate stage (expected labels, formats and durations).\n' +
    '# Inferred from the data when this file was missing; review it and commit it. Files that\n' +
    '# do not match are reported as anomalies in out/validate/report.md.\n';
  await writeFileAtomic(file, header + YAML.stringify(schema, { singleQuote: true }));
}

/** Writes an input schema (`schema.json`). */
export async function writeInputSchema(file: string, schema: InputSchema): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(inputSchemaSchema.parse(schema), null, 2) + '\n');
}

/**
 * Reads an input schema file (`schema.json`), or returns undefined when it does not exist.
 * @throws ConfigError when it exists but cannot be read or is malformed.
 */
export function readInputSchema(file: string): InputSchema | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(
      formatProblem(file, 'cannot read', (err as Error).message, 'Check the file permissions.'),
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      formatProblem(file, 'not valid JSON', (err as Error).message.split('\n')[0], 'Re-run the train stage.'),
    );
  }
  return parseWith(inputSchemaSchema, raw, text, file, 're-run the validate and train stages.');
}

/**
 * The checks a model directory's inputs get: its `schema.json`, or, for a model trained before
 * models carried one, the default `validate.*` limits without format expectations (so non-finite,
 * silent, too short and unreadable clips are still refused, and no format warning is guessed).
 * @throws ConfigError when `schema.json` exists but is malformed.
 */
export function readInputChecks(modelDir: string): InputChecks {
  const file = path.join(modelDir, INPUT_SCHEMA_FILE);
  const schema = readInputSchema(file);
  if (!schema)
    return defaultInputChecks(`${modelDir} has no ${INPUT_SCHEMA_FILE}; retrain to ship the schema`);
  return { data: schema.data, limits: schema.limits, source: file };
}
