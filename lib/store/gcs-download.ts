/**
 * Verified downloads from GCS. The bytes are hashed (crc32c and md5) as they arrive and compared
 * with the service's `x-goog-hash`; a dropped or short body continues with a Range request pinned
 * to the generation first seen, so an interrupted transfer finishes without starting over.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type http from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { LockstepError, formatProblem } from '../errors.ts';
import type { TransferOptions } from './remote.ts';
import { isTransient, statusOf, toGcsError } from './gcs-errors.ts';
import { Crc32c } from './crc32c.ts';
import { responseError } from './gcs-client.ts';

/** What the service reports about a stored object. */
export interface ObjectHashes {
  size?: number;
  crc32c?: string;
  md5?: string;
  generation?: string;
}

/** crc32c and md5 (base64, as GCS reports them) and size of bytes in memory. */
export function hashBuffer(data: Buffer): { size: number; crc32c: string; md5: string } {
  const crc = new Crc32c();
  crc.update(data);
  return { size: data.length, crc32c: crc.toString(), md5: createHash('md5').update(data).digest('base64') };
}

/** crc32c and md5 (base64, as GCS reports them) and size of a local file, in one read. */
export async function hashFile(filePath: string): Promise<{ size: number; crc32c: string; md5: string }> {
  const crc = new Crc32c();
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

/** Waits `ms`, rejecting early when `signal` aborts; leaves no listener on `signal` behind. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One object to download, and the policies of the remote it lives on. */
export interface DownloadSource {
  /** Starts a media request from byte `start`, pinned to `generation` once known. */
  open(options: {
    generation?: string;
    start: number;
    signal?: AbortSignal;
    timeoutMs?: number;
  }): Promise<http.IncomingMessage>;
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
): Promise<{ ok: true; sha256: string; size: number } | { ok: false; problem: string }> {
  const crc = new Crc32c();
  const md5 = createHash('md5');
  // The bytes arrive in order (a resumed transfer asks from the byte it has), so the sha256 is
  // that of the file as written: the caller checks it without reading the file back.
  const sha256 = createHash('sha256');
  const expected: ObjectHashes = {};
  let received = 0;
  let failures = 0;
  const out = fs.createWriteStream(destPath, { flags: 'w' });
  // A local write error (a full disk, a read-only directory) ends the download at once, as one
  // line naming the file: it is not the service's fault, and retrying cannot help.
  let outError: Error | undefined;
  const outDone = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', (err) => {
      outError = err;
      reject(err);
    });
  });
  // Observed now (so a write error is never an unhandled rejection), awaited at the end.
  outDone.catch(() => undefined);
  const writeFailed = (err: Error) =>
    new LockstepError(
      formatProblem(
        destPath,
        `cannot write the download of ${source.where}`,
        err.message,
        'Free disk space (lockstep gc) or make the directory writable, then run the command again.',
      ),
    );
  try {
    for (;;) {
      options.signal?.throwIfAborted();
      const before = received;
      // A connection that closes mid-body is an error of the response itself (so the transfer
      // continues at once with a Range request); the watchdog is only for a link gone silent.
      const stallMs = source.stallTimeoutMs;
      let watchdog: NodeJS.Timeout | undefined;
      let res: http.IncomingMessage | undefined;
      const arm = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => {
          res?.destroy(Object.assign(new Error(`no data for ${stallMs} ms`), { code: 'ETIMEDOUT' }));
        }, stallMs);
      };
      try {
        res = await source.open({
          generation: expected.generation,
          start: received,
          signal: options.signal,
          timeoutMs: stallMs,
        });
        const status = res.statusCode ?? 0;
        if (status === 416 && received > 0) {
          // Asked past the end: everything is here (the size check below decides).
          res.resume();
          break;
        }
        if (status !== 200 && status !== 206) throw await responseError(res);
        if (received > 0 && status === 200) {
          // The service ignored the Range: start the bytes over.
          throw Object.assign(new Error('range ignored by the service'), { code: 'ERANGEIGNORED' });
        }
        const headers = res.headers;
        const hashes = parseGoogHash(headers['x-goog-hash']);
        expected.crc32c ??= hashes.crc32c;
        expected.md5 ??= hashes.md5;
        if (expected.generation === undefined && typeof headers['x-goog-generation'] === 'string')
          expected.generation = headers['x-goog-generation'];
        const storedLength = headers['x-goog-stored-content-length'];
        if (
          expected.size === undefined &&
          typeof storedLength === 'string' &&
          Number.isFinite(Number(storedLength))
        )
          expected.size = Number(storedLength);
        arm();
        const body = res;
        await pipeline(
          body,
          new Writable({
            write(chunk: Buffer, _encoding, callback) {
              arm();
              crc.update(chunk);
              md5.update(chunk);
              sha256.update(chunk);
              received += chunk.length;
              if (outError) return callback(outError);
              if (out.write(chunk)) return callback();
              // A stream that fails never drains: its error ends the wait too.
              const done = (err?: Error) => {
                out.off('drain', done);
                out.off('error', done);
                callback(err);
              };
              out.once('drain', done);
              out.once('error', done);
            },
          }),
          options.signal ? { signal: options.signal } : {},
        );
        // A body that ended cleanly but short of its declared length was cut off too.
        if (!body.complete)
          throw Object.assign(new Error('connection closed mid-body'), { code: 'ECONNRESET' });
      } catch (err) {
        options.signal?.throwIfAborted();
        if (outError) throw writeFailed(outError);
        if ((err as { code?: unknown }).code === 'ERANGEIGNORED') {
          throw new LockstepError(
            formatProblem(
              source.where,
              'the service ignored a Range request',
              undefined,
              'Use a GCS endpoint or emulator that supports ranged reads.',
            ),
          );
        }
        if (statusOf(err) === 404) throw toGcsError(err, source.where, 'download');
        if (!isTransient(err)) throw toGcsError(err, source.where, 'download');
        // Progress resets the failure budget, and a drop after progress resumes at once; a flaky
        // link that keeps moving still finishes.
        if (received > before) {
          failures = 0;
          continue;
        }
        failures++;
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
    await outDone.catch((err: Error) => {
      throw writeFailed(err);
    });
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
  return { ok: true, sha256: sha256.digest('hex'), size: received };
}
