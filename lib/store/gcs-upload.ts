/**
 * Uploads to the GCS remote (gcs-remote.ts holds the rest). Small files go in one multipart
 * request from the bytes that were hashed (sent by MediaClient, retried here); large ones through a resumable session saved before
 * any byte is sent, so a later run continues it. Every upload declares crc32c and md5 and carries
 * `ifGenerationMatch=0`; the stored object's hashes are compared after, and a damaged copy is
 * replaced. A saved session is asked where it stands before the client gets it: a finished one
 * (200, even when its object has since been deleted) is dropped and the bucket checked.
 */
import fsp from 'node:fs/promises';
import type { Bucket, File } from '@google-cloud/storage';
import { IntegrityError, formatProblem } from '../errors.ts';
import type { Oid } from '../types.ts';
import type { PutOptions } from './remote.ts';
import { isTransient, statusOf, toGcsError } from './gcs-errors.ts';
import type { UploadSessions } from './gcs-sessions.ts';
import type { MediaClient } from './gcs-client.ts';
import { hashBuffer, hashFile, type ObjectHashes } from './gcs-download.ts';

/** What an upload needs of the remote it goes to. */
export interface UploadTarget {
  bucketName: string;
  bucket: Bucket;
  keyOf(oid: Oid): string;
  where(oid: Oid): string;
  sessions?: UploadSessions;
  media: MediaClient;
  resumableThreshold: number;
  resumableChunkSize: number;
  /** Retries of a small file's upload on 429, 5xx and dropped connections. */
  maxRetries: number;
  /** A small file's upload whose connection is silent this long is dropped and retried. */
  stallTimeoutMs: number;
  integrityRetries: number;
  backoff(attempt: number, signal?: AbortSignal): Promise<void>;
  statObject(oid: Oid, o: { missingOk: true }): Promise<ObjectHashes | undefined>;
  deleteGeneration(oid: Oid, generation?: string): Promise<void>;
}

/**
 * One multipart upload of a small file, repeated on 429, 5xx and dropped connections (as the
 * client's own retries did): `ifGenerationMatch=0` makes a repeat safe, a success whose answer
 * was lost answers 412, which the caller resolves by looking at the stored object.
 */
async function sendSmall(
  ctx: UploadTarget,
  oid: Oid,
  data: Buffer,
  metadata: Record<string, unknown>,
  signal: AbortSignal | undefined,
): Promise<File['metadata']> {
  for (let attempt = 0; ; attempt++) {
    try {
      return (await ctx.media.uploadMultipart(ctx.bucketName, ctx.keyOf(oid), data, metadata, {
        ifGenerationMatch: 0,
        signal,
        timeoutMs: ctx.stallTimeoutMs,
      })) as File['metadata'];
    } catch (err) {
      if (signal?.aborted || attempt >= ctx.maxRetries || !isTransient(err)) throw err;
      await ctx.backoff(attempt + 1, signal);
    }
  }
}

function hashesOf(metadata: File['metadata']): ObjectHashes {
  return {
    size: Number(metadata.size),
    crc32c: metadata.crc32c,
    md5: metadata.md5Hash,
    generation: String(metadata.generation),
  };
}

/** Uploads `srcPath` as `oid` unless it is already there; true when this call stored it. */
export async function uploadObject(
  ctx: UploadTarget,
  oid: Oid,
  srcPath: string,
  options: PutOptions,
): Promise<boolean> {
  // Small files are read once into memory (or come read and verified by the caller): hashed and
  // sent from the same bytes.
  const size = options.data ? options.data.length : (await fsp.stat(srcPath)).size;
  const data = size < ctx.resumableThreshold ? (options.data ?? (await fsp.readFile(srcPath))) : undefined;
  const local = data ? hashBuffer(data) : await hashFile(srcPath);
  let lastProblem = '';
  const sessionKey = {
    bucket: ctx.bucketName,
    name: ctx.keyOf(oid),
    size: local.size,
    crc32c: local.crc32c,
  };
  let staleSessionSeen = false;
  for (let attempt = 0; attempt <= ctx.integrityRetries; attempt++) {
    options.signal?.throwIfAborted();
    if (attempt > 0) await ctx.backoff(attempt, options.signal);
    let resumedSession: string | undefined;
    const common = {
      // We check the hashes ourselves (declared to the service and compared after).
      validation: false as const,
      preconditionOpts: { ifGenerationMatch: 0 },
      metadata: {
        contentType: 'application/octet-stream',
        crc32c: local.crc32c,
        md5Hash: local.md5,
        // A pack's bytes hash to no name: its id names its members (packs.ts).
        metadata: oid.startsWith('pack-') ? { 'lockstep-pack': 'v1' } : { sha256: oid },
      },
    };
    let stored: ObjectHashes | undefined;
    /** True when this attempt's upload created the object; false when it was already there. */
    let created = true;
    try {
      if (data) {
        stored = hashesOf(await sendSmall(ctx, oid, data, common.metadata, options.signal));
      } else {
        // The session URI is saved before any byte is sent, so a later run (after a crash or
        // a kill) continues this upload from the service's offset.
        resumedSession = await ctx.sessions?.load(sessionKey);
        if (resumedSession) {
          // Ask the service before handing a saved session to the client: a finished session
          // answers 200 (given to the client, it resends into it and never settles), a
          // forgotten one 404 or 410.
          const where = await ctx.media.sessionStatus(resumedSession, local.size);
          if (where.state !== 'incomplete') {
            await ctx.sessions?.forget(sessionKey);
            resumedSession = undefined;
            // Finished by an earlier run: the bucket says whether the object is still there.
            if (where.state === 'finished') {
              stored = await ctx.statObject(oid, { missingOk: true });
              if (stored) created = false;
            }
          }
        }
        if (!stored) {
          // The client's File (tens of bound methods) only where the client uploads: a small
          // object goes through MediaClient, and making one per object cost CPU on every push.
          const file = ctx.bucket.file(ctx.keyOf(oid));
          let uri = resumedSession;
          if (!uri) {
            [uri] = await file.createResumableUpload({
              metadata: common.metadata,
              preconditionOpts: common.preconditionOpts,
            });
            await ctx.sessions?.save(sessionKey, uri);
          }
          const [uploaded] = await ctx.bucket.upload(srcPath, {
            ...common,
            destination: file,
            resumable: true,
            uri,
            // Chunked sessions keep the chunk in flight, so a drop resumes from the service's offset.
            chunkSize: ctx.resumableChunkSize,
          });
          await ctx.sessions?.forget(sessionKey);
          stored = hashesOf(uploaded.metadata);
        }
      }
    } catch (err) {
      const status = statusOf(err);
      if (resumedSession && (status === 404 || status === 410)) {
        // The saved session expired or was cancelled: start a fresh one (not a failed attempt).
        await ctx.sessions?.forget(sessionKey);
        if (!staleSessionSeen) attempt--;
        staleSessionSeen = true;
        continue;
      }
      if (status === 412) {
        // The session is spent either way: a retry starts a fresh one.
        await ctx.sessions?.forget(sessionKey);
        // Usually already there (another pusher, or our own earlier attempt whose answer was
        // lost). Some servers also answer a rejected final chunk with 412: no object, retry.
        const there = await ctx.statObject(oid, { missingOk: true });
        if (!there) {
          lastProblem =
            'the upload precondition failed but the bucket holds no such object (a server that rejects damaged uploads with 412)';
          continue;
        }
        stored = there;
        created = false;
      } else if (
        status === 400 &&
        /doesn't match calculated|hash mismatch|checksum|crc32c|md5/i.test(String((err as Error).message))
      ) {
        lastProblem = 'the service received bytes that do not match the declared crc32c/md5';
        await ctx.sessions?.forget(sessionKey);
        continue;
      } else {
        throw toGcsError(err, ctx.where(oid), 'upload');
      }
    }
    if (
      stored.size === local.size &&
      stored.crc32c === local.crc32c &&
      (!stored.md5 || stored.md5 === local.md5)
    )
      return created;
    lastProblem = `the remote copy has crc32c ${stored.crc32c} and size ${stored.size}, expected ${local.crc32c} and ${local.size}`;
    await ctx.deleteGeneration(oid, stored.generation);
  }
  throw new IntegrityError(
    formatProblem(
      ctx.where(oid),
      'upload could not be verified',
      lastProblem,
      'Check the network path to the bucket and push again.',
    ),
  );
}
