/**
 * Anomaly detection (like TFX ExampleValidator): compares file statistics with the schema and
 * the params limits. Errors are problems featurize cannot fix; warnings are conversions it will
 * make or properties worth a look.
 */
import type { DataSchema } from './schema.ts';
import type { FileStats } from './stats.ts';

export type Severity = 'error' | 'warning';

export interface Anomaly {
  severity: Severity;
  kind: AnomalyKind;
  file?: string;
  detail: string;
}

export type AnomalyKind =
  | 'unreadable'
  | 'missing_file'
  | 'unknown_label'
  | 'non_finite'
  | 'too_short'
  | 'too_long'
  | 'duration_outside_schema'
  | 'silent'
  | 'clipped'
  | 'sample_rate_mismatch'
  | 'channel_mismatch'
  | 'bit_depth_mismatch'
  | 'class_imbalance'
  | 'missing_label'
  | 'speaker_in_two_splits'
  | 'empty_split'
  | 'empty_folder';

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
  if (f.nonFinite > 0) add('error', 'non_finite', `${f.nonFinite} NaN or infinite samples`);
  if (f.duration < limits.min_duration_s) {
    add(
      'error',
      'too_short',
      `${f.duration.toFixed(3)} s is shorter than validate.min_duration_s ${limits.min_duration_s} s`,
    );
  } else if (f.duration > limits.max_duration_s) {
    add(
      'warning',
      'too_long',
      `${f.duration.toFixed(2)} s is longer than validate.max_duration_s ${limits.max_duration_s} s (featurize truncates it)`,
    );
  } else if (f.duration < schema.duration.min || f.duration > schema.duration.max) {
    add(
      'warning',
      'duration_outside_schema',
      `${f.duration.toFixed(2)} s is outside the schema range ${schema.duration.min}..${schema.duration.max} s`,
    );
  }
  if (f.duration > 0 && f.rmsDbfs < limits.silence_dbfs) {
    add(
      'error',
      'silent',
      `RMS ${f.rmsDbfs.toFixed(1)} dBFS is below validate.silence_dbfs ${limits.silence_dbfs} dBFS`,
    );
  }
  if (f.clippingRatio > limits.max_clipping_ratio) {
    add(
      'warning',
      'clipped',
      `${(f.clippingRatio * 100).toFixed(2)}% of samples at full scale (limit ${(limits.max_clipping_ratio * 100).toFixed(2)}%)`,
    );
  }
  if (!schema.sample_rates.includes(f.sampleRate)) {
    add(
      'warning',
      'sample_rate_mismatch',
      `${f.sampleRate} Hz, expected ${schema.sample_rates.join(' or ')} Hz (featurize resamples it)`,
    );
  }
  if (!schema.channels.includes(f.channels)) {
    add(
      'warning',
      'channel_mismatch',
      `${f.channels} channels, expected ${schema.channels.join(' or ')} (featurize downmixes it)`,
    );
  }
  if (!schema.bit_depths.includes(f.bitDepth)) {
    add(
      'warning',
      'bit_depth_mismatch',
      `sample format "${f.bitDepth}", expected ${schema.bit_depths.join(' or ')} (featurize converts it)`,
    );
  }
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

const ORDER: Record<Severity, number> = { error: 0, warning: 1 };

/** Sorts anomalies: errors first, then by kind, then by file. */
export function sortAnomalies(anomalies: Anomaly[]): Anomaly[] {
  return [...anomalies].sort(
    (a, b) =>
      ORDER[a.severity] - ORDER[b.severity] ||
      (a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0) ||
      ((a.file ?? '') < (b.file ?? '') ? -1 : (a.file ?? '') > (b.file ?? '') ? 1 : 0),
  );
}
