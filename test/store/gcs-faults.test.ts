import { describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { IntegrityError, LockstepError } from '../../lib/errors.ts';
import { BUCKET, keyOf, randomBlob, remoteOn, seed, writeBlob, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();

const statuses = (kind: string) => fx.fake.requests.filter((r) => r.kind === kind).map((r) => r.status);

describe('GcsRemote upload faults', () => {
  it.each([503, 429])('GcsRemote put retries a %i and stores the object once', async (status) => {
    const remote = remoteOn(fx.fake);
    const data = randomBlob(3000);
    const { file, oid } = writeBlob(fx.dir, data);
    fx.fake.inject({ kind: 'upload', status, times: 2 });
    await remote.put(oid, file);
    expect(statuses('upload')).toEqual([status, status, 200]);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
  });

  it('GcsRemote put survives a connection dropped mid multipart upload', async () => {
    const remote = remoteOn(fx.fake);
    const data = randomBlob(50_000);
    const { file, oid } = writeBlob(fx.dir, data);
    fx.fake.inject({ kind: 'upload', dropAfterBytes: 20_000 });
    await remote.put(oid, file);
    expect(fx.fake.count('upload')).toBe(2);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
  });

  it('GcsRemote put of a small file whose answer goes silent after its headers retries and finds the object stored', async () => {
    const remote = remoteOn(fx.fake, { stallTimeout: 0.3 });
    const data = randomBlob(4000);
    const { file, oid } = writeBlob(fx.dir, data);
    fx.fake.inject({ kind: 'upload', stallAnswer: true });
    // Stored by the first attempt, whose answer never finished: not this call's object any more.
    expect(await remote.put(oid, file)).toBe(false);
    expect(statuses('upload')).toEqual([200, 412]);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
  });

  it('GcsRemote put resumes a resumable upload dropped mid-way without resending everything', async () => {
    const remote = remoteOn(fx.fake, { resumableThreshold: 64 * 1024 });
    const size = 2 * 1024 * 1024;
    const data = randomBlob(size);
    const { file, oid } = writeBlob(fx.dir, data);
    // Chunks are 256 KiB: the third request dies 100,000 bytes in.
    fx.fake.inject({ kind: 'upload-chunk', skip: 2, dropAfterBytes: 100_000 });
    await remote.put(oid, file);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
    // One session: the client asked where the upload stood and sent only the rest.
    expect(fx.fake.count('upload-init')).toBe(1);
    const sent = fx.fake.requests.filter((r) => r.kind === 'upload-chunk').reduce((n, r) => n + r.bytesIn, 0);
    expect(sent).toBeLessThan(size * 1.5);
    const chunks = fx.fake.requests.filter((r) => r.kind === 'upload-chunk');
    const ranges = chunks.map((r) => r.contentRange);
    expect(ranges).toContain('bytes */*');
    expect(ranges).toContain(`bytes ${2 * 262144 + 100_000}-${3 * 262144 + 100_000 - 1}/*`);
    expect(chunks.map((r) => r.status)).toContain(-1);
  });

  it('GcsRemote put retries when bytes arrive corrupted and never leaves a bad object', async () => {
    const remote = remoteOn(fx.fake);
    const data = randomBlob(10_000);
    const { file, oid } = writeBlob(fx.dir, data);
    fx.fake.inject({ kind: 'upload', corrupt: true });
    await remote.put(oid, file);
    expect(statuses('upload')).toEqual([400, 200]);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
  });

  it('GcsRemote put fails with an IntegrityError when every attempt arrives corrupted', async () => {
    const remote = remoteOn(fx.fake, { integrityRetries: 2 });
    const { file, oid } = writeBlob(fx.dir, randomBlob(10_000));
    fx.fake.inject({ kind: 'upload', corrupt: true, times: Infinity });
    const err = await remote.put(oid, file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(
      /^gs:\/\/test-bucket\/team\/store\/sha256\/.*: upload could not be verified/,
    );
    expect((err as Error).message).not.toContain('\n');
    expect(fx.fake.object(BUCKET, keyOf(oid))).toBeUndefined();
    expect(fx.fake.count('upload')).toBe(3);
  });

  it('GcsRemote put gives up on a persistent 503 with one clear line', async () => {
    const remote = remoteOn(fx.fake, { maxRetries: 1 });
    const { file, oid } = writeBlob(fx.dir, randomBlob(100));
    fx.fake.inject({ kind: 'upload', status: 503, times: Infinity });
    const err = await remote.put(oid, file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockstepError);
    expect((err as Error).message).toMatch(/upload failed with HTTP 503 .*run the command again/);
    expect((err as Error).message).not.toContain('\n');
    expect(fx.fake.count('upload')).toBe(2);
  });
});

describe('GcsRemote download faults', () => {
  async function stored(
    size: number,
  ): Promise<{ oid: string; data: Buffer; remote: ReturnType<typeof remoteOn> }> {
    const remote = remoteOn(fx.fake);
    const data = randomBlob(size);
    const { file, oid } = writeBlob(fx.dir, data);
    await remote.put(oid, file);
    fx.fake.resetLog();
    return { oid, data, remote };
  }

  it('GcsRemote get retries a 503 and a 429', async () => {
    const { oid, data, remote } = await stored(5000);
    fx.fake.inject({ kind: 'download', status: 503 });
    fx.fake.inject({ kind: 'download', status: 429 });
    const dest = path.join(fx.dir, 'out');
    await remote.get(oid, dest);
    expect(fs.readFileSync(dest).equals(data)).toBe(true);
    expect(statuses('download')).toEqual([503, 429, 200]);
  });

  it('GcsRemote get continues a dropped download with a Range request', async () => {
    const { oid, data, remote } = await stored(400_000);
    fx.fake.inject({ kind: 'download', dropAfterBytes: 150_000 });
    const dest = path.join(fx.dir, 'out');
    await remote.get(oid, dest);
    expect(fs.readFileSync(dest).equals(data)).toBe(true);
    const ranged = fx.fake.requests.filter((r) => r.kind === 'download' && r.range);
    expect(ranged.length).toBe(1);
    const from = Number(/^bytes=(\d+)-$/.exec(ranged[0].range!)?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(150_000);
    expect(ranged[0].query.generation).toBe(String(fx.fake.object(BUCKET, keyOf(oid))!.generation));
  });

  it('GcsRemote get continues a truncated body', async () => {
    const { oid, data, remote } = await stored(100_000);
    fx.fake.inject({ kind: 'download', truncateTo: 30_000 });
    const dest = path.join(fx.dir, 'out');
    await remote.get(oid, dest);
    expect(fs.readFileSync(dest).equals(data)).toBe(true);
    expect(fx.fake.requests.find((r) => r.kind === 'download' && r.range)?.range).toBe('bytes=30000-');
  });

  it('GcsRemote get refetches a body corrupted in transit', async () => {
    const { oid, data, remote } = await stored(20_000);
    fx.fake.inject({ kind: 'download', corrupt: true });
    const dest = path.join(fx.dir, 'out');
    await remote.get(oid, dest);
    expect(fs.readFileSync(dest).equals(data)).toBe(true);
    expect(fx.fake.count('download')).toBe(2);
  });

  it('GcsRemote get rejects an object rotten at rest and removes the partial file', async () => {
    const { oid, remote } = await stored(20_000);
    fx.fake.rot(BUCKET, keyOf(oid));
    const dest = path.join(fx.dir, 'out');
    const err = await remote.get(oid, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(
      /download fails its checksum "crc32c .*, expected .*"\. The remote copy may be damaged/,
    );
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('GcsRemote get into a full disk fails at once with one line naming the file', async () => {
    // A long stall timeout: the failure must come from the write error, not from a watchdog.
    const remote = remoteOn(fx.fake, { stallTimeout: 60 });
    const data = randomBlob(300_000);
    const { oid } = writeBlob(fx.dir, data);
    fx.fake.putObject(BUCKET, keyOf(oid), data);
    const dest = path.join(fx.dir, 'out');
    const realCreate = fs.createWriteStream;
    // What a full file system does to a write stream: the first write fails and the stream dies.
    const full = () =>
      new Writable({
        highWaterMark: 16 * 1024,
        write(_chunk, _encoding, callback) {
          setImmediate(() =>
            callback(
              Object.assign(new Error('ENOSPC: no space left on device, write'), {
                code: 'ENOSPC',
                syscall: 'write',
              }),
            ),
          );
        },
      }) as unknown as fs.WriteStream;
    const spy = vi
      .spyOn(fs, 'createWriteStream')
      .mockImplementation(((file: fs.PathLike, options?: object) =>
        file === dest ? full() : realCreate(file, options as never)) as typeof fs.createWriteStream);
    try {
      const err = await remote.get(oid, dest).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LockstepError);
      expect(String((err as Error).message)).toMatch(
        /^.*out: cannot write the download of gs:\/\/.*ENOSPC.*Free disk space \(lockstep gc\)/,
      );
      expect(String((err as Error).message)).not.toContain('\n');
    } finally {
      spy.mockRestore();
    }
  });

  it('GcsRemote get of a missing object is an IntegrityError naming it', async () => {
    const remote = remoteOn(fx.fake);
    const oid = 'ab'.repeat(32);
    const err = await remote.get(oid, path.join(fx.dir, 'out')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toContain(
      `gs://test-bucket/team/store/sha256/ab/${oid.slice(2)}: download failed: not found`,
    );
  });
});

describe('GcsRemote listing faults', () => {
  it('GcsRemote has retries a 503 on a list page and a slow page still answers', async () => {
    const remote = remoteOn(fx.fake);
    const oids = seed(fx.fake, 2500);
    fx.fake.inject({ kind: 'list', status: 503, skip: 1 });
    fx.fake.inject({ kind: 'list', delayMs: 300 });
    const found = await remote.has(oids);
    expect(found.size).toBe(oids.length);
    expect(statuses('list')).toContain(503);
  });
});

describe('GcsRemote resumable sessions across runs', () => {
  const CHUNK = 256 * 1024;

  it('GcsRemote put continues a large upload left unfinished by an earlier run', async () => {
    const sessionDir = path.join(fx.dir, 'sessions');
    const size = 8 * CHUNK;
    const data = randomBlob(size);
    const { file, oid } = writeBlob(fx.dir, data);
    const options = { resumableThreshold: 64 * 1024, sessionDir };
    // The first run dies after three chunks: every later chunk request is cut off.
    fx.fake.inject({ kind: 'upload-chunk', skip: 3, dropAfterBytes: 1000, times: Infinity });
    await expect(remoteOn(fx.fake, { ...options, maxRetries: 0 }).put(oid, file)).rejects.toThrow(
      LockstepError,
    );
    const saved = fs.readdirSync(sessionDir);
    expect(saved).toHaveLength(1);
    // A session URI lets its holder finish the upload: private to the user.
    expect(fs.statSync(path.join(sessionDir, saved[0])).mode & 0o777).toBe(0o600);
    expect(fs.statSync(sessionDir).mode & 0o777).toBe(0o700);
    expect(fx.fake.object(BUCKET, keyOf(oid))).toBeUndefined();

    fx.fake.clearFaults();
    fx.fake.resetLog();
    await remoteOn(fx.fake, options).put(oid, file);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
    expect(fx.fake.count('upload-init')).toBe(0);
    const chunks = fx.fake.requests.filter((r) => r.kind === 'upload-chunk');
    // It asked where the session stood (lockstep first, then the client), then sent only the rest.
    expect(chunks[0].contentRange).toBe(`bytes */${size}`);
    expect(chunks[1].contentRange).toBe('bytes */*');
    const from = Number(/^bytes (\d+)-/.exec(chunks[2].contentRange ?? '')?.[1]);
    expect(from).toBeGreaterThanOrEqual(2 * CHUNK);
    expect(chunks.reduce((n, r) => n + r.bytesIn, 0)).toBe(size - from);
    expect(fs.readdirSync(sessionDir)).toHaveLength(0);
  });

  it('GcsRemote put starts a fresh session when the saved one is gone', async () => {
    const sessionDir = path.join(fx.dir, 'sessions');
    const data = randomBlob(3 * CHUNK);
    const { file, oid } = writeBlob(fx.dir, data);
    const options = { resumableThreshold: 64 * 1024, sessionDir };
    fx.fake.inject({ kind: 'upload-chunk', skip: 1, dropAfterBytes: 10, times: Infinity });
    await expect(remoteOn(fx.fake, { ...options, maxRetries: 0 }).put(oid, file)).rejects.toThrow(
      LockstepError,
    );
    // The service forgets the session (expiry after a week, or a cancel).
    const saved = fs.readdirSync(sessionDir);
    expect(saved).toHaveLength(1);
    const sessionFile = path.join(sessionDir, saved[0]);
    const stale = JSON.parse(fs.readFileSync(sessionFile, 'utf8')) as { uri: string; created: number };
    fs.writeFileSync(
      sessionFile,
      JSON.stringify({ ...stale, uri: stale.uri.replace(/upload_id=\w+/, 'upload_id=gone') }),
    );

    fx.fake.clearFaults();
    fx.fake.resetLog();
    await remoteOn(fx.fake, options).put(oid, file);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
    expect(fx.fake.count('upload-init')).toBe(1);
    expect(fs.readdirSync(sessionDir)).toHaveLength(0);
  });
});

describe('UploadSessions', () => {
  it('UploadSessions refuses to save into a directory others can read', async () => {
    const { UploadSessions } = await import('../../lib/store/gcs-sessions.ts');
    const open = path.join(fx.dir, 'open');
    fs.mkdirSync(open, { mode: 0o777 });
    fs.chmodSync(open, 0o777);
    const key = { bucket: 'b', name: 'n', size: 1, crc32c: 'x' };
    await new UploadSessions(open).save(key, 'http://example/upload?upload_id=secret');
    expect(fs.readdirSync(open)).toEqual([]);
    const closed = path.join(fx.dir, 'closed');
    const sessions = new UploadSessions(closed);
    await sessions.save(key, 'http://example/upload?upload_id=1');
    expect(await sessions.load(key)).toBe('http://example/upload?upload_id=1');
    await sessions.forget(key);
    expect(await sessions.load(key)).toBeUndefined();
  });
});
