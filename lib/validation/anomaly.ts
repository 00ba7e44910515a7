/**
 * Anomalies (like TFX ExampleValidator's): one finding about a clip or a dataset, with a
 * severity. Errors are problems no later step can fix (training refuses the clip, serving
 * rejects it); warnings are conversions featurize makes or properties worth a look.
 */

export type Severity = 'error' | 'warning';

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

export interface Anomaly {
  severity: Severity;
  kind: AnomalyKind;
  file?: string;
  detail: string;
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

/** True when any anomaly is an error. */
export function hasErrorAnomaly(anomalies: readonly Anomaly[]): boolean {
  return anomalies.some((a) => a.severity === 'error');
}

/**
 * One line for an input's error anomalies, as the server, `predict` and `batch-predict` report
 * them: `<where>: <kind>: <detail>; <kind>: <detail>. <fix>` (the details are validate's own).
 */
export function describeRejection(where: string, anomalies: readonly Anomaly[]): string {
  const errors = anomalies.filter((a) => a.severity === 'error');
  const shown = (errors.length ? errors : anomalies)
    .map((a) => `${a.kind}: ${a.detail.replace(/\.$/, '')}`)
    .join('; ');
  return `${where}: ${shown}. Send a clip the model's training schema accepts (see lockstep validate).`;
}
