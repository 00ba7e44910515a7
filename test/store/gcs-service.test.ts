/**
 * The GCS remote against the behaviours of the real service that an emulator run showed the
 * code (and the fake) got wrong: a finished resumable session answering 200 after its object was
 * deleted, the JSON API's path forms, a connection dropped mid-body, a precondition failure with
 * no object, and two pushers racing on the same objects.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { Storage } from '@google-cloud/storage';
import { UploadSessions } from '../../lib/store/gcs-sessions.ts';
import { hashFile } from '../../lib/store/gcs-download.ts';
import { createStorage } from '../../lib/store/gcs-client.ts';
import { BUCKET, PREFIX, keyOf, randomBlob, remoteOn, writeBlob, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();
const CHUNK = 256 * 1024;

describe('GCS remote against the real service behaviour', () => {
  it('a saved session whose upload finished but whose object is gone is dropped and the object uploaded again', async () => {
    const sessionDir = path.join(fx.dir, 'sessions');
    const data = randomBlob(3 * CHUNK);
    const { file, oid } = writeBlob(fx.dir, data);
    const options = { resumableThreshold: 64 * 1024, sessionDir };
    expect(await remoteOn(fx.fake, options).put(oid, file)).toBe(true);
    // A killed push leaves the session file of an upload that had finished on the service...
    const chunk = fx.fake.requests.find((r) => r.kind === 'upload-chunk')!;
    const uri = `${fx.fake.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=${encodeURIComponent(keyOf(oid))}&upload_id=${chunk.query.upload_id}`;
    const { size, crc32c } = await hashFile(file);
    await new UploadSessions(sessionDir).save({ bucket: BUCKET, name: keyOf(oid), size, crc32c }, uri);
    // ...and then the object is deleted (gc, or "delete that object and push again").
    fx.fake.deleteObject(BUCKET, keyOf(oid));
    fx.fake.resetLog();

    expect(await remoteOn(fx.fake, options).put(oid, file)).toBe(true);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
    // The finished session answered 200 (as GCS does); a fresh session carried the bytes.
    expect(fx.fake.requests.filter((r) => r.kind === 'upload-chunk')[0].status).toBe(200);
    expect(fx.fake.count('upload-init')).toBe(1);
    expect(fs.readdirSync(sessionDir)).toHaveLength(0);
  });

  it('the fake refuses JSON-API paths without /storage/v1, and STORAGE_EMULATOR_HOST still works', async () => {
    fx.fake.putObject(BUCKET, 'a/b', Buffer.from('x'));
    const bare = await fetch(`${fx.fake.url}/b/${BUCKET}/o/${encodeURIComponent('a/b')}`);
    expect(bare.status).toBe(404);
    const full = await fetch(`${fx.fake.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent('a/b')}`);
    expect(full.status).toBe(200);
    // The client left to itself drops /storage/v1 under STORAGE_EMULATOR_HOST...
    const previous = process.env.STORAGE_EMULATOR_HOST;
    process.env.STORAGE_EMULATOR_HOST = fx.fake.url;
    try {
      const raw = new Storage({ projectId: 'p' });
      await expect(raw.bucket(BUCKET).file('a/b').getMetadata()).rejects.toMatchObject({ code: 404 });
      // ...the one client factory hands the variable over as apiEndpoint instead.
      const [meta] = await createStorage(Storage, { projectId: 'p' })
        .bucket(BUCKET)
        .file('a/b')
        .getMetadata();
      expect(meta.name).toBe('a/b');
      const { file, oid } = writeBlob(fx.dir, randomBlob(1000));
      const remote = remoteOn(fx.fake, { apiEndpoint: undefined });
      expect(await remote.put(oid, file)).toBe(true);
      expect((await remote.has([oid])).has(oid)).toBe(true);
      await remote.get(oid, path.join(fx.dir, 'back'));
      expect(fs.readFileSync(path.join(fx.dir, 'back')).equals(fs.readFileSync(file))).toBe(true);
    } finally {
      if (previous === undefined) delete process.env.STORAGE_EMULATOR_HOST;
      else process.env.STORAGE_EMULATOR_HOST = previous;
    }
  });

  it('a download whose connection drops mid-body resumes at once, not after the stall timeout', async () => {
    // The watchdog is set far beyond the test's bound: only noticing the drop itself can pass.
    const remote = remoteOn(fx.fake, { stallTimeout: 60 });
    const data = randomBlob(2_000_000);
    const { oid } = writeBlob(fx.dir, data);
    fx.fake.putObject(BUCKET, keyOf(oid), data);
    fx.fake.inject({ kind: 'download', dropAfterBytes: 700_000, times: 2 });
    const started = Date.now();
    await remote.get(oid, path.join(fx.dir, 'out'));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(fs.readFileSync(path.join(fx.dir, 'out')).equals(data)).toBe(true);
    const downloads = fx.fake.requests.filter((r) => r.kind === 'download');
    expect(downloads).toHaveLength(3);
    expect(downloads[1].range).toMatch(/^bytes=\d+-$/);
  }, 30_000);

  it('a 412 on the final chunk with no object is retried, not taken for "already there"', async () => {
    const remote = remoteOn(fx.fake, { resumableThreshold: 64 * 1024 });
    const data = randomBlob(2 * CHUNK);
    const { file, oid } = writeBlob(fx.dir, data);
    // What the emulator answers a corrupted final chunk with.
    fx.fake.inject({ kind: 'upload-chunk', skip: 1, status: 412 });
    expect(await remote.put(oid, file)).toBe(true);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
    expect(fx.fake.count('upload-init')).toBe(2);
  });

  it('a 412 on every attempt with no object fails naming the cause', async () => {
    const remote = remoteOn(fx.fake, { integrityRetries: 1 });
    const { file, oid } = writeBlob(fx.dir, randomBlob(1000));
    fx.fake.inject({ kind: 'upload', status: 412, times: Infinity });
    const err = (await remote.put(oid, file).catch((e: unknown) => e)) as Error;
    expect(err.message).toMatch(/precondition failed but the bucket holds no such object/);
    expect(err.message).not.toContain('\n');
  });

  it('two remotes putting the same objects at once: both succeed, each object stored once, counts honest', async () => {
    const blobs = Array.from({ length: 12 }, () => writeBlob(fx.dir, randomBlob(5000)));
    const a = remoteOn(fx.fake);
    const b = remoteOn(fx.fake);
    const results = await Promise.all(
      blobs.flatMap(({ file, oid }) => [
        a.put(oid, file).then((s) => ['a', s]),
        b.put(oid, file).then((s) => ['b', s]),
      ]),
    );
    const stored = results.filter(([, s]) => s === true).length;
    expect(stored).toBe(12);
    for (const { oid } of blobs) expect(fx.fake.object(BUCKET, keyOf(oid))).toBeDefined();
    expect(fx.fake.names(BUCKET).filter((n) => n.startsWith(`${PREFIX}/sha256/`))).toHaveLength(12);
  });
});

describe('two clones pushing at once', () => {
  it('both succeed, every object once, and the counts add up to what was stored', async () => {
    const { Cache } = await import('../../lib/store/cache.ts');
    const { pushObjects } = await import('../../lib/store/transfer.ts');
    const { repoAt } = await import('../../lib/repo.ts');
    const repos = ['one', 'two'].map((n) => {
      fs.mkdirSync(path.join(fx.dir, n));
      return repoAt(path.join(fx.dir, n));
    });
    // The same 40 objects in both caches.
    const blobs = Array.from({ length: 40 }, () => randomBlob(3000));
    const oids: string[] = [];
    for (const repo of repos) {
      const cache = new Cache(repo);
      oids.length = 0;
      for (const b of blobs) oids.push(await cache.insertBytes(b));
    }
    // Both clones see an empty remote, then race on every upload.
    const results = await Promise.all(repos.map((repo) => pushObjects(repo, remoteOn(fx.fake), oids)));
    const stored = results.reduce((n, r) => n + r.transferred, 0);
    expect(stored).toBe(40);
    expect(results.reduce((n, r) => n + r.skipped, 0)).toBe(40);
    expect(fx.fake.names(BUCKET)).toHaveLength(40);
  });
});

describe('the fake GCS errors', () => {
  it('answers errors with the reason GCS gives for the status (400 invalid, 429 rateLimitExceeded, 503 backendError)', async () => {
    fx.fake.putObject(BUCKET, 'r/x', Buffer.from('x'));
    const meta = `${fx.fake.url}/storage/v1/b/${BUCKET}/o/${encodeURIComponent('r/x')}`;
    const reasonOf = async (res: Response) =>
      ((await res.json()) as { error: { code: number; errors: { reason: string }[] } }).error;
    for (const [status, reason] of [
      [429, 'rateLimitExceeded'],
      [503, 'backendError'],
      [403, 'forbidden'],
    ] as const) {
      fx.fake.inject({ kind: 'metadata', status });
      const res = await fetch(meta);
      expect(res.status).toBe(status);
      expect(await reasonOf(res)).toMatchObject({ code: status, errors: [{ reason }] });
    }
    expect(await reasonOf(await fetch(`${meta}x`))).toMatchObject({
      code: 404,
      errors: [{ reason: 'notFound' }],
    });
    // A declared hash the bytes do not match: 400, reason invalid (not a backend error to retry).
    const boundary = 'b0undary';
    const body = [
      `--${boundary}\r\ncontent-type: application/json\r\n\r\n${JSON.stringify({ name: 'r/y', md5Hash: 'AAAAAAAAAAAAAAAAAAAAAA==' })}`,
      `\r\n--${boundary}\r\ncontent-type: application/octet-stream\r\n\r\nhello\r\n--${boundary}--`,
    ].join('');
    const res = await fetch(`${fx.fake.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart`, {
      method: 'POST',
      headers: { 'content-type': `multipart/related; boundary=${boundary}` },
      body,
    });
    expect(res.status).toBe(400);
    expect(await reasonOf(res)).toMatchObject({ code: 400, errors: [{ reason: 'invalid' }] });
  });
});
