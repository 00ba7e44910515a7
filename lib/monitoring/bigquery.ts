/**
 * Prediction logs from the BigQuery table a Vertex AI endpoint's request-response logging
 * writes (`bq://project.dataset.table`). Vertex writes one row per sampled request with the
 * columns `endpoint`, `deployed_model_id`, `logging_time` (TIMESTAMP), `request_id`,
 * `request_payload` and `response_payload` (REPEATED STRING: one JSON instance / one JSON
 * prediction each). Each instance-prediction pair becomes one log entry, the shape the local
 * server writes to JSONL, so `lockstep monitor` and the canary analysis compute the same
 * statistics from either source. The table has no latency column: entries carry
 * `latencyMs: NaN` and latency checks skip them.
 *
 * The window is a query parameter (`@since`, `@until`), results are read page by page
 * (`getQueryResults` with `pageToken`), so a long window never sits in one response.
 */
import { BigQuery } from '@google-cloud/bigquery';
import { BQ_TABLE } from '../environment/policy.ts';
import { ConfigError, LockstepError } from '../errors.ts';
import type { PredictionLogEntry } from '../serving/logs.ts';

export interface BigQueryTable {
  projectId: string;
  datasetId: string;
  tableId: string;
}

export interface BigQueryLogOptions {
  since?: string | Date;
  until?: string | Date;
  /** Environment name written into each entry. */
  env?: string;
  /** The key that named the table, for messages (default `logs`). */
  where?: string;
  /** Rows per page (default 1000). */
  pageSize?: number;
  /** Extra client options (tests: `apiEndpoint` of a local fake). */
  clientOptions?: Record<string, unknown>;
}

/** Parses `bq://project.dataset.table`; a ConfigError naming `where` otherwise. */
export function parseBigQueryTable(url: string, where = 'logs'): BigQueryTable {
  const m = BQ_TABLE.exec(url);
  if (!m)
    throw new ConfigError(
      `${where}: not a BigQuery table "${url}". Use bq://project.dataset.table (the table the endpoint's request_logging writes).`,
    );
  return { projectId: m[1], datasetId: m[2], tableId: m[3] };
}

/**
 * Client options used when a caller passes none (the CLI runs in-process in tests, which point
 * it at a local fake this way). Production leaves it empty.
 */
export const bigQueryClientDefaults: { options?: Record<string, unknown> } = {};

interface Row {
  deployed_model_id?: string | null;
  logging_time?: { value: string } | string | null;
  request_payload?: string[] | null;
  response_payload?: string[] | null;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** One row → one entry per instance / prediction pair (a row with a batch holds several). */
export function entriesOfRow(row: Row, env: string): PredictionLogEntry[] {
  const t = row.logging_time;
  const time = typeof t === 'string' ? t : t?.value;
  if (!time) return [];
  const iso = new Date(time).toISOString();
  const flat = (payload: string[] | null | undefined, key: string): unknown[] =>
    (payload ?? []).flatMap((s) => {
      const v = parseJson(s);
      // Tolerate a whole request / response body in one element.
      if (v && typeof v === 'object' && Array.isArray((v as Record<string, unknown>)[key]))
        return (v as Record<string, unknown[]>)[key];
      // An element that is not JSON keeps its place, so later instances stay paired with
      // their predictions.
      return [v];
    });
  const instances = flat(row.request_payload, 'instances');
  const predictions = flat(row.response_payload, 'predictions');
  const out: PredictionLogEntry[] = [];
  for (const [i, p] of predictions.entries()) {
    const pred = p as { label?: unknown; scores?: unknown; anomalies?: unknown };
    if (typeof pred?.label !== 'string') continue;
    const inst = instances[i] as { features?: unknown } | undefined;
    const summary =
      Array.isArray(inst?.features) && inst.features.every((x) => typeof x === 'number')
        ? (inst.features as number[])
        : undefined;
    out.push({
      time: iso,
      env,
      ...(row.deployed_model_id ? { deployedModelId: row.deployed_model_id } : {}),
      status: 'ok',
      label: pred.label,
      scores: (pred.scores ?? {}) as Record<string, number>,
      ...(summary ? { summary } : {}),
      latencyMs: NaN,
      ...(Array.isArray(pred.anomalies) && pred.anomalies.length > 0
        ? { anomalies: pred.anomalies as PredictionLogEntry['anomalies'] }
        : {}),
    });
  }
  return out;
}

function bigQueryError(err: unknown, table: string, where: string): LockstepError {
  const e = err as { code?: number; message?: string; errors?: { reason?: string }[] };
  const reason = e.errors?.[0]?.reason;
  const msg = (e.message ?? String(err)).split('\n')[0];
  const fix =
    e.code === 404 || reason === 'notFound'
      ? `Create the dataset (bq mk --dataset) or fix ${where}`
      : e.code === 403 || reason === 'accessDenied'
        ? 'Grant the caller roles/bigquery.dataViewer on the dataset and roles/bigquery.jobUser on the project'
        : `Check ${where} and your Google Cloud credentials`;
  return new LockstepError(`${where}: cannot read BigQuery logs ${table} "${msg}". ${fix}.`, {
    cause: err,
  });
}

/** Reads the window's entries, in time order. */
export async function readBigQueryLogs(
  url: string,
  options: BigQueryLogOptions = {},
): Promise<PredictionLogEntry[]> {
  const where = options.where ?? 'logs';
  const table = parseBigQueryTable(url, where);
  const bq = new BigQuery({
    projectId: table.projectId,
    ...(options.clientOptions ?? bigQueryClientDefaults.options),
  });
  const conditions: string[] = [];
  const params: Record<string, unknown> = {};
  if (options.since !== undefined) {
    conditions.push('logging_time >= @since');
    params.since = BigQuery.timestamp(new Date(options.since));
  }
  if (options.until !== undefined) {
    conditions.push('logging_time < @until');
    params.until = BigQuery.timestamp(new Date(options.until));
  }
  // The table is validated by BQ_TABLE (no backtick can reach the query); values are parameters.
  const query = [
    'SELECT deployed_model_id, logging_time, request_payload, response_payload',
    `FROM \`${table.projectId}.${table.datasetId}.${table.tableId}\``,
    conditions.length ? `WHERE ${conditions.join(' AND ')}` : '',
    'ORDER BY logging_time, request_id',
  ]
    .filter(Boolean)
    .join('\n');
  const entries: PredictionLogEntry[] = [];
  try {
    const [job] = await bq.createQueryJob({ query, params, useLegacySql: false });
    let pageToken: string | undefined;
    for (;;) {
      const [rows, next, resp] = await job.getQueryResults({
        autoPaginate: false,
        maxResults: options.pageSize ?? 1000,
        ...(pageToken ? { pageToken } : {}),
      });
      // jobComplete false: the query still runs and the page holds no rows yet. Each call
      // waits on the service side (timeoutMs, 10 s by default) before answering, so ask again.
      if ((resp as { jobComplete?: boolean } | undefined)?.jobComplete === false) continue;
      for (const row of rows as Row[]) entries.push(...entriesOfRow(row, options.env ?? ''));
      pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
      if (!pageToken) break;
    }
  } catch (err) {
    throw bigQueryError(err, url, where);
  }
  return entries.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
