import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { crc32cOf, md5Of } from '../support/fake-gcs.ts';
import {
  BUCKET,
  keyOf,
  randomBlob,
  randomOid,
  remoteOn,
  seed,
  writeBlob,
  useGcsFixture,
} from './gcs-helpers.ts';

const fx = useGcsFixture();

describe('GcsRemote round trip', () => {
  it('GcsRemote put stores a small file by multipart under prefix/sha256/ab/... with declared hashes', async () => {
    const remote = remoteOn(fx.fake);
    const data = randomBlob(1000);
    const { file, oid } = writeBlob(fx.dir, data);
    await remote.put(oid, file);
    const stored = fx.fake.object(BUCKET, keyOf(oid));
    expect(stored?.data.equals(data)).toBe(true);
    expect(fx.fake.count('upload')).toBe(1);
    expect(fx.fake.count('upload-init')).toBe(0);
    const upload = fx.fake.requests.find((r) => r.kind === 'upload')!;
    expect(upload.query.ifGenerationMatch).toBe('0');
    expect(keyOf(oid)).toBe(`team/store/sha256/${oid.slice(0, 2)}/${oid.slice(2)}`);
  });

  it('GcsRemote put sends files at or above the threshold through a resumable upload', async () => {
    const remote = remoteOn(fx.fake, { resumableThreshold: 64 * 1024 });
    const data = randomBlob(300 * 1024);
    const { file, oid } = writeBlob(fx.dir, data);
    await remote.put(oid, file);
    expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(data)).toBe(true);
    expect(fx.fake.count('upload-init')).toBe(1);
    expect(fx.fake.count('upload-chunk')).toBeGreaterThanOrEqual(1);
    expect(fx.fake.count('upload')).toBe(0);
  });

  it('GcsRemote get writes the exact bytes of small and large objects', async () => {
    const remote = remoteOn(fx.fake, { resumableThreshold: 64 * 1024 });
    for (const size of [0, 1, 5000, 200 * 1024]) {
      const data = randomBlob(size);
      const { file, oid } = writeBlob(fx.dir, data);
      await remote.put(oid, file);
      const dest = path.join(fx.dir, `out-${size}`);
      await remote.get(oid, dest);
      expect(fs.readFileSync(dest).equals(data)).toBe(true);
    }
  });

  it('GcsRemote put of an object already there answers 412 and succeeds without changing it', async () => {
    const remote = remoteOn(fx.fake);
    const { file, oid } = writeBlob(fx.dir, randomBlob(2000));
    await remote.put(oid, file);
    const generation = fx.fake.object(BUCKET, keyOf(oid))!.generation;
    await remote.put(oid, file);
    expect(fx.fake.requests.filter((r) => r.kind === 'upload').map((r) => r.status)).toEqual([200, 412]);
    expect(fx.fake.object(BUCKET, keyOf(oid))!.generation).toBe(generation);
  });

  it('GcsRemote put replaces a damaged copy already on the remote', async () => {
    const remote = remoteOn(fx.fake);
    const data = randomBlob(4000);
    const { file, oid } = writeBlob(fx.dir, data);
    fx.fake.putObject(BUCKET, keyOf(oid), Buffer.from('not the right bytes'));
    await remote.put(oid, file);
    expect(fx.fake.object(BUCKET, keyOf(oid))!.data.equals(data)).toBe(true);
    expect(fx.fake.count('delete')).toBe(1);
  });

  it('GcsRemote list yields every object id and skips foreign names', async () => {
    const remote = remoteOn(fx.fake);
    const oids = seed(fx.fake, 2300);
    fx.fake.putObject(BUCKET, 'team/store/sha256/zz/not-an-oid', Buffer.from('x'));
    fx.fake.putObject(BUCKET, 'team/other/sha256/00/' + 'a'.repeat(62), Buffer.from('x'));
    const listed: string[] = [];
    for await (const oid of remote.list()) listed.push(oid);
    expect(listed.sort()).toEqual(oids);
    // Three pages of objects, then one of packs (none).
    expect(fx.fake.count('list')).toBe(4);
  });
});

describe('GcsRemote has', () => {
  it('GcsRemote has answers few ids with one metadata request each', async () => {
    const remote = remoteOn(fx.fake);
    const present = seed(fx.fake, 5);
    const absent = [randomOid(), randomOid()];
    fx.fake.resetLog();
    const found = await remote.has([...present, ...absent, present[0]]);
    expect([...found].sort()).toEqual(present);
    expect(fx.fake.count('metadata')).toBe(7);
    expect(fx.fake.count()).toBe(7);
  });

  it('GcsRemote has lists key ranges when checking many ids against a large remote', async () => {
    const remote = remoteOn(fx.fake);
    const onRemote = seed(fx.fake, 6000);
    const absent = Array.from({ length: 500 }, randomOid);
    const wanted = [...onRemote.slice(0, 4000), ...absent];
    fx.fake.resetLog();
    const found = await remote.has(wanted);
    expect([...found].sort()).toEqual(onRemote.slice(0, 4000));
    expect(fx.fake.count('metadata')).toBe(0);
    // One density page, then ranges of about two pages: close to 6 pages, never one per id.
    expect(fx.fake.count('list')).toBeLessThanOrEqual(12);
    const ranged = fx.fake.requests.filter((r) => r.kind === 'list' && r.query.startOffset);
    expect(ranged.length).toBeGreaterThan(1);
  });

  it('GcsRemote has asks per object when the remote is much larger than the question', async () => {
    const remote = remoteOn(fx.fake, { perObjectThreshold: 4 });
    const onRemote = seed(fx.fake, 20_000, 4);
    const wanted = [...onRemote.filter((_, i) => i % 3000 === 0), randomOid(), randomOid()];
    fx.fake.resetLog();
    const found = await remote.has(wanted);
    expect([...found].sort()).toEqual(onRemote.filter((_, i) => i % 3000 === 0));
    // One page to learn the density, then at most one metadata request per remaining id.
    expect(fx.fake.count('list')).toBe(1);
    expect(fx.fake.count()).toBeLessThanOrEqual(1 + wanted.length);
  });

  it('GcsRemote has returns the empty set for an empty remote in one request', async () => {
    const remote = remoteOn(fx.fake);
    const wanted = Array.from({ length: 100 }, randomOid);
    const found = await remote.has(wanted);
    expect(found.size).toBe(0);
    expect(fx.fake.count()).toBe(1);
  });
});

describe('GcsRemote stored hashes', () => {
  it('GcsRemote put declares crc32c and md5 the service can check', async () => {
    const remote = remoteOn(fx.fake);
    const data = randomBlob(777);
    const { file, oid } = writeBlob(fx.dir, data);
    await remote.put(oid, file);
    const stored = fx.fake.object(BUCKET, keyOf(oid))!;
    expect(stored.crc32c).toBe(crc32cOf(data));
    expect(stored.md5Hash).toBe(md5Of(data));
    expect(stored.metadata).toEqual({ sha256: oid });
  });
});

describe('GcsRemote has with foreign names', () => {
  it('GcsRemote has stays exact when the first page holds no object ids', async () => {
    const remote = remoteOn(fx.fake, { perObjectThreshold: 2 });
    for (let i = 0; i < 1200; i++)
      fx.fake.putObject(BUCKET, `team/store/sha256/00/junk-${String(i).padStart(4, '0')}`, Buffer.from('x'));
    const present = seed(fx.fake, 3);
    const found = await remote.has([...present, randomOid(), randomOid()]);
    expect([...found].sort()).toEqual(present);
  });
});
