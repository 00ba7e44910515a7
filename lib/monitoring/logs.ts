/**
 * Where monitoring reads prediction logs: the local JSON-lines directory the server writes
 * (`.lockstep/logs/<env>`), a `gs://bucket/prefix` where the log files were shipped (every
 * `*.jsonl` object under the prefix), or a `bq://project.dataset.table` a Vertex AI endpoint's
 * request-response logging writes (./bigquery.ts). Torn or malformed lines are skipped.
 */
import type { Policy } from '../environment/policy.ts';
import { readPredictionLogs, type PredictionLogEntry } from '../serving/logs.ts';
import { toGcsError } from '../store/gcs-errors.ts';
import { listGsObjects, openGsPrefix, type GsOptions } from '../store/gcs-objects.ts';

/** Parses JSON lines, skipping torn or malformed ones. */
export function parseLogLines(text: string): PredictionLogEntry[] {
  const out: PredictionLogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as PredictionLogEntry;
      if (e && typeof e.time === 'string') out.push(e);
    } catch {
      // a writer killed mid-line
    }
  }
  return out;
}

/**
 * Reads every entry from a log directory or a `gs://` prefix, in time order; with `since`, only
 * entries from then on.
 */
export async function readLogs(
  source: string,
  options: GsOptions & { since?: string | Date; env?: string } = {},
): Promise<PredictionLogEntry[]> {
  if (source.startsWith('bq://')) {
    const { readBigQueryLogs } = await import('./bigquery.ts');
    return readBigQueryLogs(source, { since: options.since, env: options.env, where: options.where });
  }
  if (!source.startsWith('gs://')) return readPredictionLogs(source, { since: options.since });
  const prefix = await openGsPrefix(source, { ...options, where: options.where ?? '--logs' });
  const files = await listGsObjects(prefix, (rel) => rel.endsWith('.jsonl'));
  const entries: PredictionLogEntry[] = [];
  for (const { file } of files) {
    try {
      const [bytes] = await file.download();
      entries.push(...parseLogLines(bytes.toString('utf8')));
    } catch (err) {
      throw toGcsError(err, `gs://${prefix.loc.bucket}/${file.name}`, 'download');
    }
  }
  const since = options.since === undefined ? undefined : new Date(options.since).getTime();
  return entries
    .filter((e) => since === undefined || new Date(e.time).getTime() >= since)
    .sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}

/**
 * The remote log source of an environment's policy: its `logs:` when that is a gs:// or bq://
 * location, else the BigQuery table its Vertex endpoint's request_logging writes; undefined
 * when the logs are local. `where` names the key for messages.
 */
export function policyLogSource(
  policy: Policy | undefined,
  env: string,
): { source: string; where: string } | undefined {
  const logs = policy?.logs;
  if (logs && (logs.startsWith('gs://') || logs.startsWith('bq://')))
    return { source: logs, where: `promotion/${env}.yaml: logs` };
  if (policy?.endpoint.kind === 'vertex' && policy.endpoint.request_logging)
    return {
      source: policy.endpoint.request_logging.table,
      where: `promotion/${env}.yaml: endpoint.request_logging.table`,
    };
  return undefined;
}
