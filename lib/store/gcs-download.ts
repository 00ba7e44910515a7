/**
 * Verified downloads from GCS. The bytes are hashed (crc32c and md5) as they arrive and compared
 * with the service's `x-goog-hash`; a dropped or short body continues with a Range request pinned
 * to the generation first seen, so an interrupted transfer finishes without starting over.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { CRC32C, type File } from '@google-cloud/storage';
import { LockstepError, formatProblem } from '../errors.ts';
import type { TransferOptions } from './remote.ts';
import { isTransient, statusOf, toGcsError } from './gcs-errors.ts';

/** What the service reports about a stored object. */
export interface ObjectHashes {
  size?: number;
  crc32c?: string;
  md5?: string;
  generation?: string;
}

/** crc32c and md5 (base64, as GCS reports them) and size of bytes in memory. */
export function hashBuffer(data: Buffer): { size: number; crc32c: string; md5: string } {
  const crc = new CRC32C();
  crc.update(data);
  return { size: data.length, crc32c: crc.toString(), md5: createHash('md5').update(data).digest('base64') };
}

/** crc32c and md5 (base64, as GCS reports them) and size of a local file, in one read. */
export async function hashFile(filePath: string): Promise<{ size: number; crc32c: string; md5: string }> {
  const crc = new CRC32C();
  const md5 = createHash('md5');
  let size = 0;
  for await (const chunk of fs.createReadStream(filePath, { highWaterMark: 1 << 20 })) {
    const buf = chunk as Buffer;
    crc.update(buf);
    md5.update(buf);
    size += buf.length;
  }
  return { size, crc32c: crc.toString(), md5: md5.digest('base64') };
}

/** Reads `x-goog-hash: crc32c=...,md5=...`. */
export function parseGoogHash(header: unknown): { crc32c?: string; md5?: string } {
  const out: { crc32c?: string; md5?: string } = {};
  const text = Array.isArray(header) ? header.join(',') : typeof header === 'string' ? header : '';
  for (const pair of text.split(',')) {
    const i = pair.indexOf('=');
    if (i < 0) continue;
    const key = pair.slice(0, i).trim();
    const value = pair.slice(i + 1).trim();
    if (key === 'crc32c') out.crc32c = value;
    if (key === 'md5') out.md5 = value;
  }
  return out;
}

/** Waits `ms`, rejecting early when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

/** One object to download, and the policies of the remote it lives on. */
export interface DownloadSource {
  /** The object handle, pinned to `generation` once known. */
  file(generation?: string): File;
  /** `gs://...` URL of the object, for messages. */
  where: string;
  /** Attempts without progress before giving up. */
  maxRetries: number;
  /** Silence on an open body after which it is dropped and continued. */
  stallTimeoutMs: number;
  backoff(attempt: number, signal?: AbortSignal): Promise<void>;
  /** Object metadata, when the download response did not carry it. */
  stat(): Promise<ObjectHashes>;
}

/**
 * Downloads the object to `destPath` (overwritten) once, resuming within this call after drops.
 * Returns `ok: false` with the problem when the bytes do not match the stored hashes.
 */
export async function downloadOnce(
  source: DownloadSource,
  destPath: string,
  options: TransferOptions,
): Promise<{ ok: true } | { ok: false; problem: string }> {
  const crc = new CRC32C();
  const md5 = createHash('md5');
  const expected: ObjectHashes = {};
  let received = 0;
  let failures = 0;
  const out = fs.createWriteStream(destPath, { flags: 'w' });
  const outDone = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const file = source.file(expected.generation);
      const stream = file.createReadStream({
        validation: false,
        ...(received > 0 ? { start: received } : {}),
      });
      stream.on('response', (res: { headers?: Record<string, unknown> }) => {
        const headers = res.headers ?? {};
        const hashes = parseGoogHash(headers['x-goog-hash']);
        expected.crc32c ??= hashes.crc32c;
        expected.md5 ??= hashes.md5;
        if (expected.generation === undefined && typeof headers['x-goog-generation'] === 'string')
          expected.generation = headers['x-goog-generation'];
        const storedLength = Number(headers['x-goog-stored-content-length']);
        if (
          expected.size === undefined &&
          Number.isFinite(storedLength) &&
          headers['x-goog-stored-content-length'] !== undefined
        )
          expected.size = storedLength;
      });
      const before = received;
      // The client never reports a connection that closes mid-body (the stream just stops):
      // a watchdog turns silence into an error so the download continues with a Range request.
      const stallMs = source.stallTimeoutMs;
      let watchdog: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          stream.destroy(Object.assign(new Error(`no data for ${stallMs} ms`), { code: 'ETIMEDOUT' }));
        }, stallMs);
      };
      // Armed once headers arrive: until then the client's own retries and timeouts govern.
      stream.on('response', arm);
      try {
        await pipeline(
          stream,
          new Writable({
            write(chunk: Buffer, _encoding, callback) {
              arm();
              crc.update(chunk);
              md5.update(chunk);
              received += chunk.length;
              if (out.write(chunk)) callback();
              else out.once('drain', () => callback());
            },
          }),
          options.signal ? { signal: options.signal } : {},
        );
      } catch (err) {
        options.signal?.throwIfAborted();
        if (statusOf(err) === 404) throw toGcsError(err, source.where, 'download');
        if (!isTransient(err) && statusOf(err) !== 416) throw toGcsError(err, source.where, 'download');
        // Progress resets the failure budget: a flaky link that keeps moving still finishes.
        failures = received > before ? 0 : failures + 1;
        if (failures > source.maxRetries) throw toGcsError(err, source.where, 'download');
        await source.backoff(failures, options.signal);
        continue;
      } finally {
        clearTimeout(watchdog);
      }
      if (expected.size === undefined) expected.size = (await source.stat()).size;
      if (received < (expected.size ?? 0)) {
        // A clean but short body: continue where it stopped.
        failures++;
        if (failures > source.maxRetries) break;
        await source.backoff(failures, options.signal);
        continue;
      }
      break;
    }
  } finally {
    out.end();
    await outDone;
  }
  if (expected.crc32c === undefined && expected.md5 === undefined) {
    const stat = await source.stat();
    expected.crc32c = stat.crc32c;
    expected.md5 = stat.md5;
  }
  const got = { size: received, crc32c: crc.toString(), md5: md5.digest('base64') };
  if (expected.size !== undefined && got.size !== expected.size)
    return { ok: false, problem: `got ${got.size} bytes of ${expected.size}` };
  if (expected.crc32c && got.crc32c !== expected.crc32c)
    return { ok: false, problem: `crc32c ${got.crc32c}, expected ${expected.crc32c}` };
  if (expected.md5 && got.md5 !== expected.md5)
    return { ok: false, problem: `md5 ${got.md5}, expected ${expected.md5}` };
  if (!expected.crc32c && !expected.md5)
    throw new LockstepError(
      formatProblem(
        source.where,
        'the service reported no crc32c or md5',
        undefined,
        'Check the bucket is a GCS bucket or emulator that stores object hashes.',
      ),
    );
  return { ok: true };
}
