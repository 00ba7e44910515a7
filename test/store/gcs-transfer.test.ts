import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import { FakeGcs } from '../support/fake-gcs.ts';
import { IntegrityError, LockstepError } from '../../lib/errors.ts';
import { Cache } from '../../lib/store/cache.ts';
import { openRemote } from '../../lib/store/open-remote.ts';
import { pullObjects, pushObjects } from '../../lib/store/transfer.ts';
import type { GcsRemoteOptions } from '../../lib/store/gcs-remote.ts';
import type { Remote } from '../../lib/store/remote.ts';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { BUCKET, keyOf, randomBlob, sha256, tempDir } from './gcs-helpers.ts';

let fake: FakeGcs;
const cleanup: string[] = [];

beforeAll(async () => {
  fake = await FakeGcs.start();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
});
afterEach(() => {
  for (const dir of cleanup.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function freshRepo(): Repo {
  const root = tempDir();
  cleanup.push(root);
  return repoAt(root);
}

async function open(options: GcsRemoteOptions = {}): Promise<Remote> {
  const gcs: GcsRemoteOptions = {
    apiEndpoint: fake.url,
    projectId: 'p',
    maxRetryDelay: 0.02,
    stallTimeout: 0.5,
    ...options,
  };
  return openRemote(`gs://${BUCKET}/team/store`, gcs);
}

/** A repository whose cache holds `n` objects of `size` random bytes; returns it and their oids. */
async function filledRepo(n: number, size = 2000): Promise<{ repo: Repo; oids: string[] }> {
  const repo = freshRepo();
  const cache = new Cache(repo);
  const oids: string[] = [];
  for (let i = 0; i < n; i++) oids.push(await cache.insertBytes(randomBlob(size)));
  return { repo, oids };
}

describe('GcsRemote through pushObjects/pullObjects', () => {
  it('pushObjects to gs:// then pullObjects into an empty cache round-trips every object', async () => {
    const { repo, oids } = await filledRepo(60);
    const remote = await open();
    expect(remote.url).toBe('gs://test-bucket/team/store');
    const pushed = await pushObjects(repo, remote, oids);
    expect(pushed.transferred).toBe(60);
    expect(fake.names(BUCKET)).toEqual(oids.map(keyOf).sort());

    const other = freshRepo();
    const pulled = await pullObjects(other, remote, oids);
    expect(pulled).toMatchObject({ transferred: 60, missing: [] });
    const cache = new Cache(other);
    for (const oid of oids) expect(await cache.verify(oid)).toBe(true);
  });

  it('pushObjects with nothing new only checks existence, in few requests', async () => {
    const { repo, oids } = await filledRepo(1500, 64);
    const remote = await open();
    await pushObjects(repo, remote, oids);
    fake.resetLog();
    const again = await pushObjects(repo, remote, oids);
    expect(again).toMatchObject({ transferred: 0, skipped: 1500 });
    expect(fake.count('upload')).toBe(0);
    expect(fake.count()).toBeLessThanOrEqual(4);
  });

  it('an interrupted push resumes and sends only what is missing', async () => {
    const { repo, oids } = await filledRepo(30);
    const remote = await open({ maxRetries: 0 });
    const victim = oids[7];
    fake.inject({ kind: 'upload', status: 503, nameIncludes: victim.slice(2), times: Infinity });
    await expect(pushObjects(repo, remote, oids)).rejects.toThrow(LockstepError);
    expect(fake.object(BUCKET, keyOf(victim))).toBeUndefined();
    const landed = fake.names(BUCKET).length;
    expect(landed).toBeGreaterThan(0);

    fake.clearFaults();
    fake.resetLog();
    const resumed = await pushObjects(repo, remote, oids);
    expect(resumed.transferred).toBe(30 - landed);
    expect(fake.count('upload')).toBe(30 - landed);
    expect(fake.names(BUCKET)).toEqual(oids.map(keyOf).sort());
  });

  it('an interrupted pull resumes, and nothing corrupt enters the cache', async () => {
    const { repo, oids } = await filledRepo(20, 50_000);
    const remote = await open({ maxRetries: 0, integrityRetries: 0 });
    await pushObjects(repo, remote, oids);
    const victim = oids[3];
    fake.inject({ kind: 'download', corrupt: true, nameIncludes: victim.slice(2), times: Infinity });
    const other = freshRepo();
    const err = await pullObjects(other, remote, oids).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    const cache = new Cache(other);
    expect(cache.hasSync(victim)).toBe(false);

    fake.clearFaults();
    fake.resetLog();
    const resumed = await pullObjects(other, remote, oids);
    expect(resumed.missing).toEqual([]);
    expect(fake.count('download')).toBe(resumed.transferred);
    for (const oid of oids) expect(await cache.verify(oid)).toBe(true);
  });

  it('a pull names large downloads, and batches past 32 MiB, while other downloads still run', async () => {
    // What a kill of the pull would lose is what is not named yet: large objects must not wait
    // for a batch of 256 to fill (or for the slowest download) before they enter the cache.
    const put = (data: Buffer): string => {
      const oid = sha256(data);
      fake.putObject(BUCKET, keyOf(oid), data);
      return oid;
    };
    const large = put(randomBlob(16 << 20));
    const medium = [put(randomBlob(11 << 20)), put(randomBlob(11 << 20)), put(randomBlob(11 << 20))];
    const slow = put(randomBlob(100));
    let release!: () => void;
    fake.inject({
      kind: 'download',
      nameIncludes: slow.slice(2),
      holdUntil: new Promise<void>((resolve) => (release = resolve)),
    });
    const repo = freshRepo();
    const cache = new Cache(repo);
    // The held download must not time out and retry while the test looks at the cache.
    const pulling = pullObjects(repo, await open({ stallTimeout: 60 }), [large, ...medium, slow]);
    try {
      await vi.waitFor(() => expect([large, ...medium].filter((o) => !cache.hasSync(o))).toEqual([]), {
        timeout: 10_000,
        interval: 10,
      });
      expect(cache.hasSync(slow)).toBe(false);
    } finally {
      release();
      await pulling.catch(() => undefined);
    }
    await pulling;
    for (const oid of [large, ...medium, slow]) expect(await cache.verify(oid)).toBe(true);
    expect(fs.readdirSync(`${repo.cacheDir}/tmp`)).toEqual([]);
  });

  it('pullObjects refuses an object rotten on the remote', async () => {
    const { repo, oids } = await filledRepo(3);
    const remote = await open({ integrityRetries: 1 });
    await pushObjects(repo, remote, oids);
    fake.rot(BUCKET, keyOf(oids[1]));
    const other = freshRepo();
    await expect(pullObjects(other, remote, oids)).rejects.toThrow(IntegrityError);
    expect(new Cache(other).hasSync(oids[1])).toBe(false);
  });

  it('a push and a pull with as many transfers in flight as the remote allows print no listener warning', async () => {
    // Each request in flight holds abort listeners on the caller's signal; 16 of them at once
    // (the remote's concurrency) went past Node's default of 10 and printed a
    // MaxListenersExceededWarning into the job's log, the way a Vertex AI replica's did.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const { repo, oids } = await filledRepo(48);
      const remote = await open();
      const signal = new AbortController().signal;
      fake.inject({ kind: 'upload', delayMs: 40, times: Infinity });
      await pushObjects(repo, remote, oids, { signal, jobs: 16 });
      fake.clearFaults();
      fake.inject({ kind: 'download', delayMs: 40, times: Infinity });
      // The same signal again, as one repro passes to every transfer of its stages.
      const pulled = await pullObjects(freshRepo(), remote, oids, { signal, jobs: 16 });
      expect(pulled.transferred).toBe(48);
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
