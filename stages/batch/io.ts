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
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { writeFileAtomicSync } from '../../lib/atomic.ts';
import type { InputAnomaly } from '../../lib/serving/endpoint.ts';
import { LockstepError } from '../../lib/errors.ts';
import { toGcsError } from '../../lib/store/gcs-errors.ts';
import { listGsObjects, openGsPrefix, type GsOptions, type GsPrefix } from '../../lib/store/gcs-objects.ts';
import { parseEntryPath, targetInside } from '../../lib/entry-path.ts';

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

export const isGsUrl = (s: string): boolean => s.startsWith('gs://');

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

const toLines = (items: object[]): string => items.map((i) => JSON.stringify(i) + '\n').join('');

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

// ---------------------------------------------------------------------------------- gs://

export class GcsInput implements BatchInput {
  private prefix: GsPrefix | undefined;
  private readonly staging: string;

  constructor(
    readonly where: string,
    private readonly options: GsOptions = {},
  ) {
    this.staging = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-batch-in-'));
  }

  private async open(): Promise<GsPrefix> {
    this.prefix ??= await openGsPrefix(this.where, { ...this.options, where: '--input' });
    return this.prefix;
  }

  async list(): Promise<string[]> {
    return (await listGsObjects(await this.open())).map((o) => o.rel);
  }

  private local(rel: string): string {
    return targetInside(this.staging, parseEntryPath(rel, this.where), this.where);
  }

  async fetch(rels: string[]): Promise<string[]> {
    const prefix = await this.open();
    const limit = pLimit(8);
    return Promise.all(
      rels.map((rel) =>
        limit(async () => {
          const dest = this.local(rel);
          fs.mkdirSync(path.dirname(dest), { recursive: true });
          try {
            await prefix.bucket.file(prefix.name(rel)).download({ destination: dest });
          } catch (err) {
            throw toGcsError(err, `${prefix.loc.url}/${rel}`, 'download');
          }
          return dest;
        }),
      ),
    );
  }

  async release(rel: string, local: string): Promise<void> {
    const prefix = await this.open();
    try {
      await prefix.bucket.file(prefix.name(rel)).delete({ ignoreNotFound: true });
    } catch (err) {
      throw toGcsError(err, `${prefix.loc.url}/${rel}`, 'delete');
    }
    fs.rmSync(local, { force: true });
  }

  dispose(rels: string[]): void {
    for (const rel of rels) fs.rmSync(this.local(rel), { force: true });
  }

  close(): void {
    fs.rmSync(this.staging, { recursive: true, force: true });
  }
}

export class GcsOutput implements BatchOutput {
  private prefix: GsPrefix | undefined;
  private readonly run = `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
  private seq = 0;
  /** Part objects read at load or written by this run; deleted once the final files are up. */
  private readonly parts: string[] = [];

  constructor(
    readonly where: string,
    private readonly options: GsOptions = {},
  ) {}

  private async open(): Promise<GsPrefix> {
    this.prefix ??= await openGsPrefix(this.where, { ...this.options, where: '--output' });
    return this.prefix;
  }

  private async put(rel: string, data: string | Buffer, options: { create?: boolean } = {}): Promise<void> {
    const prefix = await this.open();
    try {
      await prefix.bucket.file(prefix.name(rel)).save(data, {
        resumable: false,
        validation: 'crc32c',
        ...(options.create ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
      });
    } catch (err) {
      throw toGcsError(err, `${prefix.loc.url}/${rel}`, 'upload');
    }
  }

  async load(): Promise<{ results: BatchResult[]; errors: BatchError[] }> {
    const prefix = await this.open();
    const objects = await listGsObjects(
      prefix,
      (rel) => rel === 'results.jsonl' || rel === 'errors.jsonl' || /^parts\/[^/]+\.jsonl$/.test(rel),
    );
    const results: BatchResult[] = [];
    const errors: BatchError[] = [];
    for (const o of objects) {
      let text: string;
      try {
        text = (await o.file.download())[0].toString('utf8');
      } catch (err) {
        throw toGcsError(err, `${prefix.loc.url}/${o.rel}`, 'download');
      }
      const isErrors = o.rel === 'errors.jsonl' || o.rel.startsWith('parts/errors-');
      if (isErrors) errors.push(...parseJsonLines<BatchError>(text));
      else results.push(...parseJsonLines<BatchResult>(text));
      if (o.rel.startsWith('parts/')) this.parts.push(o.rel);
    }
    return { results: dedupe(results), errors: dedupe(errors) };
  }

  async commit(results: BatchResult[], errors: BatchError[]): Promise<void> {
    const n = String(++this.seq).padStart(6, '0');
    for (const [kind, items] of [
      ['results', results],
      ['errors', errors],
    ] as const) {
      if (items.length === 0) continue;
      const rel = `parts/${kind}-${this.run}-${n}.jsonl`;
      await this.put(rel, toLines(items), { create: true });
      this.parts.push(rel);
    }
  }

  async keep(rel: string, local: string, failed: boolean): Promise<void> {
    if (!fs.existsSync(local)) return;
    const prefix = await this.open();
    const dest = `${failed ? 'failed' : 'processed'}/${rel}`;
    try {
      await prefix.bucket.upload(local, {
        destination: prefix.name(dest),
        resumable: false,
        validation: 'crc32c',
      });
    } catch (err) {
      throw toGcsError(err, `${prefix.loc.url}/${dest}`, 'upload');
    }
  }

  async finalize(
    results: BatchResult[],
    errors: BatchError[],
    labels: string[],
  ): Promise<{ results: string; csv: string; errors: string }> {
    const prefix = await this.open();
    await this.put('results.jsonl', toLines(dedupe(results)));
    await this.put('errors.jsonl', toLines(dedupe(errors)));
    await this.put('results.csv', csvText(dedupe(results), labels));
    // The merged files hold every part's lines now; a crash before this only leaves duplicates.
    for (const rel of this.parts) {
      try {
        await prefix.bucket.file(prefix.name(rel)).delete({ ignoreNotFound: true });
      } catch (err) {
        throw toGcsError(err, `${prefix.loc.url}/${rel}`, 'delete');
      }
    }
    const url = prefix.loc.url;
    return { results: `${url}/results.jsonl`, csv: `${url}/results.csv`, errors: `${url}/errors.jsonl` };
  }
}

/** Keeps the first line per (file, sha256). */
function dedupe<T extends { file: string; sha256?: string }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const key = `${i.file}\0${i.sha256 ?? ''}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
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
