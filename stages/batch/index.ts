/**
 * Batch prediction: predict every audio file under an input folder with an environment's pinned
 * model, write results as JSON lines (durably, fsync) and CSV, and only then move (or remove)
 * each input. Idempotent: a re-run after a crash skips inputs whose results are already written
 * (finishing their move), and a torn final line from a crash is dropped. Bad files are listed
 * with the reason in `errors.jsonl` and do not stop the batch. Features are computed on worker
 * threads (both cores) by the same code as training and serving.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LockstepError } from '../../lib/errors.ts';
import type { LoadedModel } from '../../lib/ml/model.ts';
import { normalizeFrames, normalizeSummary } from '../../lib/ml/transform.ts';
import type { Output } from '../../lib/output.ts';
import { featurizeFiles, type FileResult } from '../featurize/pool.ts';

export interface BatchOptions {
  /** Input folder (absolute). */
  input: string;
  /** Output folder (absolute): results.jsonl, results.csv, errors.jsonl, processed/, failed/. */
  output: string;
  model: LoadedModel;
  /** Model artifact hash recorded with each result. */
  modelHash: string;
  /** What happens to an input after its result is durable: moved under output (default) or removed. */
  onDone?: 'move' | 'remove';
  /** Files per chunk (features in parallel, one fsync per chunk). Default 32. */
  chunk?: number;
  /** Worker threads for features (default: cores). */
  workers?: number;
  out?: Output;
  signal?: AbortSignal;
  /** Test hook: called after a chunk's results are durable and before its inputs move. */
  afterDurable?: (files: string[]) => void;
}

export interface BatchResult {
  /** Input path relative to the input folder. */
  file: string;
  sha256: string;
  label: string;
  scores: Record<string, number>;
  model: string;
  time: string;
}

export interface BatchError {
  file: string;
  sha256?: string;
  reason: string;
  time: string;
}

export interface BatchSummary {
  predicted: number;
  /** Inputs whose results existed from an earlier run (only their move was finished). */
  resumed: number;
  failed: number;
  seconds: number;
  filesPerSecond: number;
  results: string;
  csv: string;
  errors: string;
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
  const out: T[] = [];
  for (const line of text.slice(0, end).split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A corrupt line cannot come from this writer; skip it rather than stop the batch.
    }
  }
  return out;
}

function appendDurably(file: string, lines: string[]): void {
  if (lines.length === 0) return;
  const fd = fs.openSync(file, 'a');
  try {
    fs.writeSync(fd, lines.join(''));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rewrites results.csv from results.jsonl (temp + rename). */
export function writeCsv(results: BatchResult[], labels: string[], file: string): void {
  const header = ['file', 'sha256', 'label', ...labels.map((l) => `p_${l}`), 'model', 'time'];
  const rows = [...results]
    .sort((a, b) => (a.file < b.file ? -1 : 1))
    .map((r) =>
      [r.file, r.sha256, r.label, ...labels.map((l) => (r.scores[l] ?? 0).toFixed(6)), r.model, r.time]
        .map(csvCell)
        .join(','),
    );
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, [header.join(','), ...rows].join('\n') + '\n');
  fs.renameSync(tmp, file);
}

function finish(options: BatchOptions, rel: string, failed: boolean): void {
  const src = path.join(options.input, rel);
  if (!fs.existsSync(src)) return;
  if ((options.onDone ?? 'move') === 'remove') {
    fs.rmSync(src, { force: true });
    return;
  }
  const dest = path.join(options.output, failed ? 'failed' : 'processed', rel);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  try {
    fs.renameSync(src, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    // Different filesystems: copy, sync, then remove the input.
    fs.copyFileSync(src, dest);
    const fd = fs.openSync(dest, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.rmSync(src);
  }
}

/** Runs the batch. */
export async function batchPredict(options: BatchOptions): Promise<BatchSummary> {
  const started = performance.now();
  if (!fs.existsSync(options.input) || !fs.statSync(options.input).isDirectory()) {
    throw new LockstepError(`--input ${options.input}: not a folder. Point it at the folder of audio files.`);
  }
  if (path.resolve(options.output).startsWith(path.resolve(options.input) + path.sep)) {
    throw new LockstepError(
      `--output ${options.output}: inside --input. Choose an output folder outside the input.`,
    );
  }
  fs.mkdirSync(options.output, { recursive: true });
  const resultsFile = path.join(options.output, 'results.jsonl');
  const errorsFile = path.join(options.output, 'errors.jsonl');
  const csvFile = path.join(options.output, 'results.csv');
  const results = readJsonLines<BatchResult>(resultsFile);
  const errors = readJsonLines<BatchError>(errorsFile);
  const done = new Map<string, boolean>();
  for (const r of results) done.set(`${r.file}\0${r.sha256}`, false);
  for (const e of errors) if (e.sha256) done.set(`${e.file}\0${e.sha256}`, true);

  const t = options.model.transform;
  const input = options.model.card.input ?? 'summary';
  const labels = options.model.labels;
  const chunk = options.chunk ?? 32;
  let predicted = 0;
  let resumed = 0;
  let failed = 0;
  const inputs = listInputs(options.input);
  for (let start = 0; start < inputs.length; start += chunk) {
    options.signal?.throwIfAborted();
    const rels = inputs.slice(start, start + chunk);
    const hashes = rels.map((rel) =>
      createHash('sha256')
        .update(fs.readFileSync(path.join(options.input, rel)))
        .digest('hex'),
    );
    // Already durable from an earlier run: only finish the move.
    const todo: number[] = [];
    rels.forEach((rel, i) => {
      const prior = done.get(`${rel}\0${hashes[i]}`);
      if (prior === undefined) todo.push(i);
      else {
        finish(options, rel, prior);
        resumed++;
      }
    });
    if (todo.length === 0) continue;
    const feats: FileResult[] = await featurizeFiles(
      t.featurize,
      todo.map((i) => path.join(options.input, rels[i])),
      { workers: options.workers, signal: options.signal },
    );
    const okIdx: number[] = [];
    const time = new Date().toISOString();
    const errorLines: string[] = [];
    feats.forEach((f, k) => {
      const i = todo[k];
      if ('error' in f) {
        errorLines.push(
          JSON.stringify({ file: rels[i], sha256: hashes[i], reason: f.error, time } satisfies BatchError) +
            '\n',
        );
      } else okIdx.push(k);
    });
    const resultLines: string[] = [];
    if (okIdx.length > 0) {
      const parts = okIdx.map((k) => {
        const f = feats[k] as Exclude<FileResult, { error: string }>;
        return input === 'frames' ? normalizeFrames(t, f.frames) : normalizeSummary(t, f.summary);
      });
      const size = parts[0].length;
      const batch = new Float32Array(size * parts.length);
      parts.forEach((p, j) => batch.set(p, j * size));
      const probs = options.model.predictProbabilities(batch, parts.length);
      okIdx.forEach((k, j) => {
        const i = todo[k];
        const scores: Record<string, number> = {};
        let best = 0;
        labels.forEach((l, c) => {
          scores[l] = probs[j * labels.length + c];
          if (probs[j * labels.length + c] > probs[j * labels.length + best]) best = c;
        });
        const r: BatchResult = {
          file: rels[i],
          sha256: hashes[i],
          label: labels[best],
          scores,
          model: options.modelHash,
          time,
        };
        results.push(r);
        resultLines.push(JSON.stringify(r) + '\n');
      });
    }
    // Durable first, then the inputs move: a crash in between re-finds the results next run.
    appendDurably(resultsFile, resultLines);
    appendDurably(errorsFile, errorLines);
    options.afterDurable?.(todo.map((i) => rels[i]));
    for (const k of okIdx) finish(options, rels[todo[k]], false);
    feats.forEach((f, k) => {
      if ('error' in f) {
        finish(options, rels[todo[k]], true);
        options.out?.err(`batch: ${rels[todo[k]]}: ${f.error}`);
      }
    });
    predicted += okIdx.length;
    failed += todo.length - okIdx.length;
    options.out?.err(`batch: ${Math.min(start + chunk, inputs.length)}/${inputs.length} files`);
  }
  writeCsv(results, labels, csvFile);
  const seconds = (performance.now() - started) / 1000;
  return {
    predicted,
    resumed,
    failed,
    seconds,
    filesPerSecond: seconds > 0 ? (predicted + failed) / seconds : 0,
    results: resultsFile,
    csv: csvFile,
    errors: errorsFile,
  };
}
