/**
 * pushObjects with the synchronous stat and read: objects at the in-memory (4 MiB) and resumable
 * (8 MiB) thresholds reach the bucket intact, and what is not a good object where one should be
 * (corrupt, a directory, a path through a file, gone) fails the way it did.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Cache } from '../../lib/store/cache.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { IntegrityError } from '../../lib/errors.ts';
import { makeRepo, rmrf } from './helpers.ts';
import { BUCKET, keyOf, remoteOn, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();
const repos: string[] = [];
afterEach(() => {
  for (const r of repos.splice(0)) rmrf(r);
});

function repoWith(blobs: Buffer[]) {
  const repo = makeRepo();
  repos.push(repo.root);
  const cache = new Cache(repo);
  const oids = blobs.map((b) => {
    const oid = createHash('sha256').update(b).digest('hex');
    const p = cache.objectPath(oid);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, b, { mode: 0o444 });
    return oid;
  });
  return { repo, cache, oids };
}

describe('push at the size thresholds', () => {
  it('objects around 4 MiB and 8 MiB arrive byte for byte', async () => {
    const sizes = [(4 << 20) - 1, 4 << 20, (4 << 20) + 1, (8 << 20) - 1, 8 << 20, (8 << 20) + 1];
    const blobs = sizes.map((n) => randomBytes(n));
    const { repo, oids } = repoWith(blobs);
    const r = await pushObjects(repo, remoteOn(fx.fake, { resumableChunkSize: 1 << 20 }), oids);
    expect(r).toEqual({ transferred: 6, skipped: 0, bytes: sizes.reduce((a, b) => a + b, 0) });
    oids.forEach((oid, i) => expect(fx.fake.object(BUCKET, keyOf(oid))?.data.equals(blobs[i]!)).toBe(true));
  }, 120_000);

  it('a corrupt object of exactly 4 MiB is quarantined and never sent', async () => {
    const good = randomBytes(4 << 20);
    const { repo, cache, oids } = repoWith([good]);
    const p = cache.objectPath(oids[0]!);
    fs.chmodSync(p, 0o644);
    const bad = Buffer.from(good);
    bad[5] ^= 1;
    fs.writeFileSync(p, bad);
    const err = await pushObjects(repo, remoteOn(fx.fake), oids).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/corrupt \(quarantined\)/);
    expect(fx.fake.object(BUCKET, keyOf(oids[0]!))).toBeUndefined();
    expect(fs.readdirSync(path.join(repo.stateDir, 'quarantine'))).toHaveLength(1);
  });
});

describe('push of what is not an object', () => {
  it('a directory where the object should be is corrupt, quarantined', async () => {
    const { repo, cache, oids } = repoWith([Buffer.from('alpha')]);
    const p = cache.objectPath(oids[0]!);
    fs.rmSync(p);
    fs.mkdirSync(p);
    const err = await pushObjects(repo, remoteOn(fx.fake), oids).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/corrupt \(quarantined\)/);
  });

  it('a file where the fan-out directory should be is a missing object', async () => {
    const { repo, cache, oids } = repoWith([Buffer.from('alpha')]);
    const dir = path.dirname(cache.objectPath(oids[0]!));
    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, 'x');
    const err = await pushObjects(repo, remoteOn(fx.fake), oids).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect((err as Error).message).toMatch(/object is missing from the cache/);
  });

  it('a missing object among good ones: the good ones are pushed, the error names the missing one', async () => {
    const { repo, cache, oids } = repoWith([Buffer.from('alpha'), Buffer.from('beta'), Buffer.from('gamma')]);
    fs.rmSync(cache.objectPath(oids[1]!));
    const err = await pushObjects(repo, remoteOn(fx.fake), oids).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/object is missing from the cache/);
    expect((err as Error).message).toContain(oids[1]!);
    expect(fx.fake.object(BUCKET, keyOf(oids[0]!))).toBeDefined();
    expect(fx.fake.object(BUCKET, keyOf(oids[2]!))).toBeDefined();
  });
});
