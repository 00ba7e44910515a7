/**
 * What batch prediction writes: one result line per scored input, one error line per refused
 * input (JSON lines, read back tolerating a torn last line and de-duplicated), and results.csv.
 * Where they are written is in io.ts (local folders) and gcs-io.ts (Cloud Storage).
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomicSync } from '../../lib/atomic.ts';
import type { InputAnomaly } from '../../lib/serving/endpoint.ts';

export interface BatchResult {
  /** Input path relative to the input folder or prefix. */
  file: string;
  sha256: string;
  label: string;
  scores: Record<string, number>;
  model: string;
  /** Input check findings (warnings; errors too with `on_error_anomaly: flag`). */
  anomalies?: InputAnomaly[];
  time: string;
}

export interface BatchError {
  file: string;
  sha256?: string;
  /** Why: validate's reason for a refused clip, or the decoder's or featurize's message. */
  reason: string;
  anomalies?: InputAnomaly[];
  time: string;
}

export interface BatchInput {
  /** The folder or gs:// URL, for messages. */
  readonly where: string;
  /** Every input, as paths relative to the input, sorted. */
  list(): Promise<string[]>;
  /** Makes the inputs readable locally; returns their absolute local paths, in order. */
  fetch(rels: string[]): Promise<string[]>;
  /** Removes the input (its result is durable and, when moving, it is kept under the output). */
  release(rel: string, local: string): Promise<void>;
  /** Drops local copies made by `fetch` (a no-op for a local input). */
  dispose(rels: string[]): void;
  close(): void;
}

export interface BatchOutput {
  readonly where: string;
  /** Results and errors made durable by earlier runs. */
  load(): Promise<{ results: BatchResult[]; errors: BatchError[] }>;
  /** Makes one chunk's lines durable. */
  commit(results: BatchResult[], errors: BatchError[]): Promise<void>;
  /** Keeps a finished input under `processed/` (or `failed/`) before it is released. */
  keep(rel: string, local: string, failed: boolean): Promise<void>;
  /** Writes the final files; returns where results.jsonl, results.csv and errors.jsonl are. */
  finalize(
    results: BatchResult[],
    errors: BatchError[],
    labels: string[],
  ): Promise<{ results: string; csv: string; errors: string }>;
}

/** Every regular file under `dir`, relative POSIX paths, sorted. */
export function listInputs(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const ent of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) walk(child);
      else if (ent.isFile()) out.push(child);
    }
  };
  walk('');
  return out.sort();
}

/**
 * Reads a JSON-lines file written by this module, truncating a torn final line (a crash mid
 * write) so later appends start on a line boundary.
 */
export function readJsonLines<T>(file: string): T[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) fs.truncateSync(file, Buffer.byteLength(text.slice(0, end)));
  return parseJsonLines<T>(text.slice(0, end));
}

/** Parses JSON lines, skipping blank, torn or corrupt ones. */
export function parseJsonLines<T>(text: string): T[] {
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A corrupt line cannot come from this writer; skip it rather than stop the batch.
    }
  }
  return out;
}

/** Items as JSON lines. */
export const toLines = (items: object[]): string => items.map((i) => JSON.stringify(i) + '\n').join('');

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV text of `results`, sorted by file. */
export function csvText(results: BatchResult[], labels: string[]): string {
  const header = ['file', 'sha256', 'label', ...labels.map((l) => `p_${l}`), 'model', 'time'];
  const rows = [...results]
    .sort((a, b) => (a.file < b.file ? -1 : 1))
    .map((r) =>
      [r.file, r.sha256, r.label, ...labels.map((l) => (r.scores[l] ?? 0).toFixed(6)), r.model, r.time]
        .map(csvCell)
        .join(','),
    );
  return [header.join(','), ...rows].join('\n') + '\n';
}

/** Rewrites results.csv from the results (temp + rename). */
export function writeCsv(results: BatchResult[], labels: string[], file: string): void {
  writeFileAtomicSync(file, csvText(results, labels));
}

/** Keeps the first line per (file, sha256). */
export function dedupe<T extends { file: string; sha256?: string }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const key = `${i.file}\0${i.sha256 ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
