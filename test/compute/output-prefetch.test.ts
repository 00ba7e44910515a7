import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ArtifactRef, Oid } from '../../lib/types.ts';
import { artifactObjects, commitArtifact } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import type { TransferOptions } from '../../lib/store/remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { objectKey } from '../../lib/store/remote.ts';
import { OutputPrefetch } from '../../lib/compute/output-prefetch.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const repos: TmpRepo[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const r of repos.splice(0)) await r.cleanup();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A job's outputs on a remote (as a replica leaves them) and a fresh clone that follows the job. */
async function jobOutputs(): Promise<{ ref: ArtifactRef; remote: LocalRemote; follower: TmpRepo }> {
  const job = await createTmpRepo();
  const follower = await createTmpRepo();
  repos.push(job, follower);
  const remoteDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-prefetch-'));
  dirs.push(remoteDir);
  job.write('out/features/a.bin', 'alpha');
  job.write('out/features/b.bin', 'beta');
  const ref = await commitArtifact(job.repo, 'out/features');
  const remote = new LocalRemote(remoteDir);
  await pushObjects(job.repo, remote, await artifactObjects(job.repo, ref));
  return { ref, remote, follower };
}

describe('OutputPrefetch', () => {
  it('pulls nothing until the pointers are there, then every object of the outputs into the cache only', async () => {
    const { ref, remote, follower } = await jobOutputs();
    let written = false;
    let reads = 0;
    const prefetch = new OutputPrefetch(
      follower.repo,
      remote,
      async () => {
        reads++;
        return written ? [ref] : undefined;
      },
      new AbortController().signal,
    );
    const cache = new Cache(follower.repo);
    await prefetch.poll();
    await prefetch.settled();
    expect(cache.hasSync(ref.hash)).toBe(false);
    written = true;
    await prefetch.poll();
    await prefetch.settled();
    const oids = await artifactObjects(follower.repo, ref, { cache });
    expect(oids).toHaveLength(3);
    for (const oid of oids) expect(cache.hasSync(oid)).toBe(true);
    // The workspace is the checkout's business, after the job succeeded.
    expect(follower.exists('out/features')).toBe(false);
    // Once started, polls read no pointer again.
    await prefetch.poll();
    expect(reads).toBe(2);
  });

  it('a corrupt object on the remote never enters the cache, and the prefetch does not fail', async () => {
    const { ref, remote, follower } = await jobOutputs();
    const cache = new Cache(follower.repo);
    const entries = (
      await artifactObjects(follower.repo, ref, { cache: new Cache(follower.repo, { remote }) })
    ).filter((oid) => oid !== ref.hash);
    // The files travel in packs (lib/store/packs.ts): one byte of each pack rots.
    const packs = path.join(remote.root, 'packs');
    const rotten = fs
      .readdirSync(packs, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name));
    expect(rotten.length).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(remote.root, objectKey(entries[0]!)))).toBe(false);
    for (const file of rotten) {
      const bytes = fs.readFileSync(file);
      bytes[0] = bytes[0]! ^ 0xff;
      fs.chmodSync(file, 0o644);
      fs.writeFileSync(file, bytes);
    }
    const prefetch = new OutputPrefetch(
      follower.repo,
      remote,
      async () => [ref],
      new AbortController().signal,
    );
    await prefetch.poll();
    await expect(prefetch.settled()).resolves.toBeUndefined();
    expect(entries.some((oid) => cache.hasSync(oid))).toBe(false);
  });

  it('an interrupted follow starts no pull', async () => {
    const { ref, remote, follower } = await jobOutputs();
    const controller = new AbortController();
    controller.abort();
    const prefetch = new OutputPrefetch(follower.repo, remote, async () => [ref], controller.signal);
    await prefetch.poll();
    await prefetch.settled();
    expect(new Cache(follower.repo).hasSync(ref.hash)).toBe(false);
  });

  it('stop() ends a pull that is under way (the job failed): nothing more enters the cache, no temp file stays', async () => {
    const { ref, remote: local, follower } = await jobOutputs();
    // A remote whose downloads of the entries take until they are aborted (a slow bucket).
    let started!: () => void;
    const downloading = new Promise<void>((r) => (started = r));
    class Slow extends LocalRemote {
      override async get(oid: Oid, dest: string, options: TransferOptions = {}): Promise<void> {
        if (oid === ref.hash) return super.get(oid, dest, options);
        const signal = options.signal!;
        await fs.promises.writeFile(dest, 'partial'); // a body partly received
        started();
        await new Promise((_, reject) => {
          if (signal.aborted) reject(signal.reason as Error);
          signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      }
    }
    const remote = new Slow(local.root);
    const prefetch = new OutputPrefetch(
      follower.repo,
      remote,
      async () => [ref],
      new AbortController().signal,
    );
    await prefetch.poll();
    await downloading;
    await prefetch.stop();
    const cache = new Cache(follower.repo);
    const entries = (await artifactObjects(follower.repo, ref, { cache })).filter((o) => o !== ref.hash);
    expect(entries).toHaveLength(2);
    for (const oid of entries) expect(cache.hasSync(oid)).toBe(false);
    const tmp = path.join(cache.root, 'tmp');
    expect(fs.existsSync(tmp) ? fs.readdirSync(tmp) : []).toEqual([]);
    // A stopped prefetch starts nothing again.
    await prefetch.poll();
    await prefetch.settled();
    for (const oid of entries) expect(cache.hasSync(oid)).toBe(false);
  });
});
