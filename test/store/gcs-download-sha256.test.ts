/**
 * The sha256 a GCS download returns is that of the bytes in the file, whatever the transfer went
 * through: drops and resumes, short bodies, an attempt that failed its checksum and started over,
 * and bytes stored under a name they do not hash to (their crc32c and md5 match them).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { IntegrityError } from '../../lib/errors.ts';
import { downloadVerified, hashFileAsync } from '../../lib/store/cache.ts';
import { BUCKET, keyOf, randomBlob, remoteOn, sha256, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();

async function fetchInto(data: Buffer, setup: () => void, options = {}) {
  const remote = remoteOn(fx.fake, options);
  const oid = sha256(data);
  fx.fake.putObject(BUCKET, keyOf(oid), data);
  setup();
  const dest = path.join(fx.dir, 'dl.tmp');
  const got = await remote.get(oid, dest);
  const onDisk = await hashFileAsync(dest);
  return { oid, got, onDisk, bytes: fs.readFileSync(dest) };
}

describe('GcsRemote.get returns the sha256 of what it wrote', () => {
  it.each([
    [
      'dropped three times mid-body',
      () => fx.fake.inject({ kind: 'download', dropAfterBytes: 70_000, times: 3 }),
    ],
    ['cut short cleanly twice', () => fx.fake.inject({ kind: 'download', truncateTo: 100_000, times: 2 })],
    ['corrupt on the first attempt', () => fx.fake.inject({ kind: 'download', corrupt: true })],
    [
      'dropped, then corrupt in the resumed part',
      () => {
        fx.fake.inject({ kind: 'download', dropAfterBytes: 50_000 });
        fx.fake.inject({ kind: 'download', corrupt: true });
      },
    ],
    ['a 503 first', () => fx.fake.inject({ kind: 'download', status: 503 })],
  ])('%s', async (_what, setup) => {
    const data = randomBlob(300_000);
    const { oid, got, onDisk, bytes } = await fetchInto(data, setup, { integrityRetries: 3 });
    expect(bytes.equals(data)).toBe(true);
    expect(got).toEqual({ sha256: oid, size: data.length });
    expect(onDisk).toEqual({ oid, size: data.length });
  });

  it('an empty object', async () => {
    const { oid, got } = await fetchInto(Buffer.alloc(0), () => undefined);
    expect(got).toEqual({ sha256: oid, size: 0 });
  });
});

describe('downloadVerified with the streamed sha256', () => {
  it('bytes stored under a sha256 they do not have (their crc32c and md5 agree) are refused and removed', async () => {
    const remote = remoteOn(fx.fake);
    const good = randomBlob(40_000);
    const oid = sha256(good);
    const bad = Buffer.from(good);
    bad[123] ^= 0xff;
    fx.fake.putObject(BUCKET, keyOf(oid), bad);
    fx.fake.inject({ kind: 'download', dropAfterBytes: 10_000 });
    const dest = path.join(fx.dir, 'dl.tmp');
    const err = await downloadVerified(remote, oid, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/remote object does not match its sha256/);
    expect((err as Error).message).toContain(sha256(bad));
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('a download that every attempt fails removes the partial file', async () => {
    const remote = remoteOn(fx.fake, { integrityRetries: 1 });
    const data = randomBlob(40_000);
    const oid = sha256(data);
    fx.fake.putObject(BUCKET, keyOf(oid), data);
    fx.fake.inject({ kind: 'download', corrupt: true, times: Infinity });
    const dest = path.join(fx.dir, 'dl.tmp');
    await expect(downloadVerified(remote, oid, dest)).rejects.toBeInstanceOf(IntegrityError);
    expect(fs.existsSync(dest)).toBe(false);
  });
});
