/**
 * Anomaly detection (like TFX ExampleValidator): compares file statistics with the schema and
 * the params limits. The per-clip checks are `lib/validation/clip.ts`'s, shared with serving;
 * this adds what only a dataset has (labels, splits, speakers, missing files).
 */
import type { Anomaly, AnomalyKind, Severity } from '../../lib/validation/anomaly.ts';
import { clipAnomalies } from '../../lib/validation/clip.ts';
import type { DataSchema } from '../../lib/validation/schema.ts';
import type { FileStats } from './stats.ts';

export {
  sortAnomalies,
  type Anomaly,
  type AnomalyKind,
  type Severity,
} from '../../lib/validation/anomaly.ts';

export interface Limits {
  min_duration_s: number;
  max_duration_s: number;
  silence_dbfs: number;
  max_clipping_ratio: number;
  max_class_imbalance: number;
}

/** Anomalies of one file (errors first). */
export function fileAnomalies(f: FileStats, schema: DataSchema, limits: Limits): Anomaly[] {
  const out: Anomaly[] = [];
  const add = (severity: Severity, kind: AnomalyKind, detail: string): void => {
    out.push({ severity, kind, file: f.path, detail });
  };
  if (!schema.labels.includes(f.label)) {
    add('error', 'unknown_label', `label "${f.label}" is not in the schema (${schema.labels.join(', ')})`);
  }
  if (!f.readable) {
    const missing = f.error?.startsWith('missing:');
    // The decoder's message starts with the file name, which the anomaly already carries.
    const reason = (f.error ?? 'cannot be decoded').replace(`${f.path}: `, '');
    add('error', missing ? 'missing_file' : 'unreadable', reason);
    return out;
  }
  const checks = { data: schema, limits, source: 'validate' };
  for (const a of clipAnomalies(f, checks)) out.push({ ...a, file: f.path });
  return out;
}

/** Dataset-level anomalies: label balance, splits and speakers. */
export function datasetAnomalies(
  files: FileStats[],
  splits: Record<string, string[]>,
  schema: DataSchema,
  limits: Limits,
  excluded: Set<string>,
): Anomaly[] {
  const out: Anomaly[] = [];
  const kept = files.filter((f) => f.readable && !excluded.has(f.path));
  const counts = new Map<string, number>(schema.labels.map((l) => [l, 0]));
  for (const f of kept) if (counts.has(f.label)) counts.set(f.label, counts.get(f.label)! + 1);
  for (const [label, n] of counts) {
    if (n === 0)
      out.push({ severity: 'warning', kind: 'missing_label', detail: `no usable file has label "${label}"` });
  }
  const present = [...counts].filter(([, n]) => n > 0);
  if (present.length > 1) {
    const [maxLabel, max] = present.reduce((a, b) => (b[1] > a[1] ? b : a));
    const [minLabel, min] = present.reduce((a, b) => (b[1] < a[1] ? b : a));
    if (max / min > limits.max_class_imbalance) {
      out.push({
        severity: 'warning',
        kind: 'class_imbalance',
        detail: `"${maxLabel}" has ${max} files, "${minLabel}" ${min}: ratio ${(max / min).toFixed(2)} > validate.max_class_imbalance ${limits.max_class_imbalance}`,
      });
    }
  }
  // A speaker in two splits leaks their voice into evaluation: the split is invalid.
  const splitsOf = new Map<string, Set<string>>();
  for (const [name, speakers] of Object.entries(splits)) {
    for (const s of speakers) splitsOf.set(s, (splitsOf.get(s) ?? new Set()).add(name));
  }
  for (const f of files) splitsOf.set(f.speaker, (splitsOf.get(f.speaker) ?? new Set()).add(f.split));
  for (const [speaker, names] of [...splitsOf].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (names.size > 1) {
      out.push({
        severity: 'error',
        kind: 'speaker_in_two_splits',
        detail: `speaker "${speaker}" is in ${[...names].sort().join(' and ')}; re-run ingest so each speaker is in one split`,
      });
    }
  }
  for (const name of ['train', 'validation', 'test']) {
    const n = kept.filter((f) => f.split === name).length;
    if (n === 0) {
      out.push({
        severity: name === 'train' ? 'error' : 'warning',
        kind: 'empty_split',
        detail: `split "${name}" has no usable file${name === 'train' ? ' (nothing to train on)' : ''}; add speakers or files`,
      });
    }
  }
  return out;
}
