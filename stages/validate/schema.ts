/**
 * The data schema (like TFX SchemaGen): what the audio is expected to look like. Inferred once
 * from the data when `stages/validate/schema.yaml` is missing, then kept in the repository so
 * that changes to it are reviewed in pull requests.
 */
import type { FileStats } from './stats.ts';
import type { DataSchema } from '../../lib/validation/schema.ts';

export {
  dataSchemaSchema,
  readDataSchema,
  writeDataSchema,
  type DataSchema,
} from '../../lib/validation/schema.ts';

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
