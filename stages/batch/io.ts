/**
 * Where batch prediction reads its inputs and writes its results: a local folder or a
 * `gs://bucket/prefix`, on either side.
 *
 * - Inputs are listed, then fetched a chunk at a time (a `gs://` input is downloaded into a
 *   private staging folder, deleted as each chunk finishes), then released: removed from the
 *   input once the result is durable and, unless removal was asked for, kept first under the
 *   output's `processed/` (or `failed/`).
 * - Results are made durable a chunk at a time. Locally: appended to `results.jsonl` /
 *   `errors.jsonl` and fsynced. In Cloud Storage, which has no append: each chunk is one new
 *   object under `parts/` (created with `ifGenerationMatch: 0`, so never overwritten), durable
 *   once the upload returns. The finished batch writes `results.jsonl`, `errors.jsonl` and
 *   `results.csv` at the output root and then deletes the parts; a crash anywhere in between
 *   leaves lines that the next run reads back and de-duplicates.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LockstepError } from '../../lib/errors.ts';
import type { GsOptions } from '../../lib/store/gcs-objects.ts';
import {
  listInputs,
  readJsonLines,
  toLines,
  writeCsv,
  type BatchError,
  type BatchInput,
  type BatchOutput,
  type BatchResult,
} from './records.ts';
import { GcsInput, GcsOutput } from './gcs-io.ts';

export const isGsUrl = (s: string): boolean => s.startsWith('gs://');

function appendDurably(file: string, text: string): void {
  if (!text) return;
  const fd = fs.openSync(file, 'a');
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Moves a file, copying and syncing across filesystems. */
function moveFile(src: string, dest: string): void {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  try {
    fs.renameSync(src, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    fs.copyFileSync(src, dest);
    const fd = fs.openSync(dest, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.rmSync(src);
  }
}

// ---------------------------------------------------------------------------------- local

export class LocalInput implements BatchInput {
  constructor(readonly where: string) {}

  async list(): Promise<string[]> {
    if (!fs.existsSync(this.where) || !fs.statSync(this.where).isDirectory()) {
      throw new LockstepError(`--input ${this.where}: not a folder. Point it at the folder of audio files.`);
    }
    return listInputs(this.where);
  }

  async fetch(rels: string[]): Promise<string[]> {
    return rels.map((rel) => path.join(this.where, ...rel.split('/')));
  }

  async release(_rel: string, local: string): Promise<void> {
    // Kept under a local output it was moved there already; otherwise remove it now.
    fs.rmSync(local, { force: true });
  }

  dispose(): void {}
  close(): void {}
}

export class LocalOutput implements BatchOutput {
  private readonly resultsFile: string;
  private readonly errorsFile: string;

  constructor(readonly where: string) {
    this.resultsFile = path.join(where, 'results.jsonl');
    this.errorsFile = path.join(where, 'errors.jsonl');
  }

  async load(): Promise<{ results: BatchResult[]; errors: BatchError[] }> {
    fs.mkdirSync(this.where, { recursive: true });
    return {
      results: readJsonLines<BatchResult>(this.resultsFile),
      errors: readJsonLines<BatchError>(this.errorsFile),
    };
  }

  async commit(results: BatchResult[], errors: BatchError[]): Promise<void> {
    appendDurably(this.resultsFile, toLines(results));
    appendDurably(this.errorsFile, toLines(errors));
  }

  async keep(rel: string, local: string, failed: boolean): Promise<void> {
    if (!fs.existsSync(local)) return;
    moveFile(local, path.join(this.where, failed ? 'failed' : 'processed', ...rel.split('/')));
  }

  async finalize(
    results: BatchResult[],
    _errors: BatchError[],
    labels: string[],
  ): Promise<{ results: string; csv: string; errors: string }> {
    const csv = path.join(this.where, 'results.csv');
    writeCsv(results, labels, csv);
    return { results: this.resultsFile, csv, errors: this.errorsFile };
  }
}

/** Opens the input and output named on the command line (folders or gs:// URLs). */
export function openBatchIo(
  input: string,
  output: string,
  storage: GsOptions = {},
): { input: BatchInput; output: BatchOutput } {
  const norm = (s: string): string => (isGsUrl(s) ? s.replace(/\/+$/, '') : path.resolve(s));
  const [i, o] = [norm(input), norm(output)];
  const sep = isGsUrl(i) ? '/' : path.sep;
  if (isGsUrl(i) === isGsUrl(o) && (o === i || o.startsWith(i + sep))) {
    throw new LockstepError(`--output ${output}: inside --input. Choose an output folder outside the input.`);
  }
  return {
    input: isGsUrl(i) ? new GcsInput(i, storage) : new LocalInput(i),
    output: isGsUrl(o) ? new GcsOutput(o, storage) : new LocalOutput(o),
  };
}
