/**
 * Batch prediction inputs and outputs in Cloud Storage (`gs://bucket/prefix`). An input is
 * downloaded into a private staging folder a chunk at a time. An output has no append: each chunk
 * is one new object under `parts/` (created with `ifGenerationMatch: 0`, so never overwritten);
 * the finished batch writes results.jsonl, errors.jsonl and results.csv at the root and then
 * deletes the parts.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pLimit from 'p-limit';
import { toGcsError } from '../../lib/store/gcs-errors.ts';
import { listGsObjects, openGsPrefix, type GsOptions, type GsPrefix } from '../../lib/store/gcs-objects.ts';
import { parseEntryPath, targetInside } from '../../lib/entry-path.ts';
import {
  csvText,
  dedupe,
  parseJsonLines,
  toLines,
  type BatchError,
  type BatchInput,
  type BatchOutput,
  type BatchResult,
} from './records.ts';

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
