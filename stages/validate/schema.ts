/**
 * The data schema (like TFX SchemaGen): what the audio is expected to look like. Inferred once
 * from the data when `stages/validate/schema.yaml` is missing, then kept in the repository so
 * that changes to it are reviewed in pull requests.
 */
import { readFile } from 'node:fs/promises';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigError, formatProblem } from '../../lib/errors.ts';
import { writeFileAtomic } from '../../lib/atomic.ts';
import type { FileStats } from './stats.ts';

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

/** Reads the schema, or returns undefined when the file does not exist. */
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
  const parsed = dataSchemaSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      formatProblem(
        `${shownAs}: ${issue.path.join('.') || '(root)'}`,
        issue.message,
        undefined,
        'Fix the value, or delete the file to infer it again.',
      ),
    );
  }
  return parsed.data;
}

function mode<T>(xs: T[]): T[] {
  const counts = new Map<T, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  const best = Math.max(...counts.values());
  return [...counts].filter(([, c]) => c === best).map(([x]) => x);
}

/**
 * Infers a schema: the labels present among `knownLabels`, the most common sample rate, channel
 * count and format (so that odd files still stand out), and a duration range around the data
 * (half the shortest to twice the longest), within the params limits.
 */
export function inferDataSchema(
  files: FileStats[],
  knownLabels: readonly string[],
  limits: { min: number; max: number },
): DataSchema {
  const ok = files.filter((f) => f.readable && f.duration > 0);
  const labels = [...new Set(files.map((f) => f.label).filter((l) => knownLabels.includes(l)))].sort();
  const durations = ok.map((f) => f.duration);
  const lo = durations.length ? Math.min(...durations) : limits.min;
  const hi = durations.length ? Math.max(...durations) : limits.max;
  return {
    version: 1,
    labels: labels.length ? labels : [...knownLabels],
    sample_rates: ok.length ? mode(ok.map((f) => f.sampleRate)).sort((a, b) => a - b) : [16000],
    channels: ok.length ? mode(ok.map((f) => f.channels)).sort((a, b) => a - b) : [1],
    bit_depths: ok.length ? mode(ok.map((f) => f.bitDepth)).sort() : ['16'],
    duration: {
      min: Math.max(limits.min, Math.floor(lo * 5) / 10),
      max: Math.min(limits.max, Math.ceil(hi * 20) / 10),
    },
  };
}

/** Writes the schema with a header that says where it came from. */
export async function writeDataSchema(file: string, schema: DataSchema): Promise<void> {
  const header =
    '# Data schema checked by the validate stage (expected labels, formats and durations).\n' +
    '# Inferred from the data when this file was missing; review it and commit it. Files that\n' +
    '# do not match are reported as anomalies in out/validate/report.md.\n';
  await writeFileAtomic(file, header + YAML.stringify(schema, { singleQuote: true }));
}
