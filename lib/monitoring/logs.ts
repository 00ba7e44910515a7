/**
 * Where monitoring reads prediction logs: the local JSON-lines directory the server writes
 * (`.lockstep/logs/<env>`), or a `gs://bucket/prefix` where the log files were shipped (every
 * `*.jsonl` object under the prefix). Torn or malformed lines are skipped, as locally.
 */
import { readPredictionLogs, type PredictionLogEntry } from '../serving/logs.ts';
import { parseGsUrl, toGcsError } from '../store/gcs-errors.ts';

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

/** Reads every entry from a log directory or a `gs://` prefix, in time order. */
export async function readLogs(
  source: string,
  options: { apiEndpoint?: string; projectId?: string; where?: string } = {},
): Promise<PredictionLogEntry[]> {
  if (!source.startsWith('gs://')) return readPredictionLogs(source);
  const loc = parseGsUrl(source, options.where ?? '--logs');
  const { Storage } = await import('@google-cloud/storage');
  const storage = new Storage({
    ...(options.apiEndpoint ? { apiEndpoint: options.apiEndpoint } : {}),
    ...(options.projectId ? { projectId: options.projectId } : {}),
  });
  const bucket = storage.bucket(loc.bucket);
  let files;
  try {
    [files] = await bucket.getFiles({ prefix: loc.prefix ? `${loc.prefix}/` : undefined });
  } catch (err) {
    throw toGcsError(err, loc.url, 'list');
  }
  const entries: PredictionLogEntry[] = [];
  for (const file of files
    .filter((f) => f.name.endsWith('.jsonl'))
    .sort((a, b) => (a.name < b.name ? -1 : 1))) {
    try {
      const [bytes] = await file.download();
      entries.push(...parseLogLines(bytes.toString('utf8')));
    } catch (err) {
      throw toGcsError(err, `gs://${loc.bucket}/${file.name}`, 'download');
    }
  }
  return entries.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
}
