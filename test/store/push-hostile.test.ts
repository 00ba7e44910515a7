/**
 * push of objects that change under it in a cache shared with another clone (whose `gc` or
 * `push` acts at the same moment): whatever happens to the object, push fails with the
 * IntegrityError saying which way (missing or corrupt), never a raw file-system error, and a
 * push that stored the object does not fail after it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { IntegrityError } from '../../lib/errors.ts';
import type { Oid } from '../../lib/types.ts';
import { makeRepo, tempDir, writeTree, rmrf } from './helpers.ts';

const cleanup: string[] = [];
afterEach(() => {
  cleanup.splice(0).forEach(rmrf);
});

const LARGE = 'x'.repeat((4 << 20) + 1);

async function setup(content: string) {
  const repo = makeRepo();
  cleanup.push(repo.root);
  const remoteDir = tempDir();
  cleanup.push(remoteDir);
  writeTree(repo.root, { 'a.bin': content });
  const ref = await commitArtifact(repo, 'a.bin');
  const objPath = new Cache(repo).objectPath(ref.hash);
  return { repo, remoteDir, oid: ref.hash, objPath };
}

/** A LocalRemote whose `put` runs `before` first and `after` once it stored the object. */
class HookedRemote extends LocalRemote {
  constructor(
    dir: string,
    private readonly hooks: { before?: () => void; after?: () => void },
  ) {
    super(dir);
  }
  override async put(oid: Oid, src: string, options?: Parameters<LocalRemote['put']>[2]): Promise<boolean> {
    this.hooks.before?.();
    const stored = await super.put(oid, src, options);
    this.hooks.after?.();
    return stored;
  }
}

describe('push of an object that changes under it (hostile)', () => {
  it('a large object deleted after it was verified and before it is sent is reported missing', async () => {
    const { repo, remoteDir, oid, objPath } = await setup(LARGE);
    const remote = new HookedRemote(remoteDir, { before: () => fs.rmSync(objPath, { force: true }) });
    const err = await pushObjects(repo, remote, [oid]).catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/object is missing from the cache/);
  });

  it('a large object deleted right after it was sent: the push succeeded and says so', async () => {
    const { repo, remoteDir, oid, objPath } = await setup(LARGE);
    const remote = new HookedRemote(remoteDir, { after: () => fs.rmSync(objPath, { force: true }) });
    const res = await pushObjects(repo, remote, [oid]);
    expect(res).toMatchObject({ transferred: 1, bytes: LARGE.length });
  });

  it('a directory where a small object should be is reported corrupt, not EISDIR', async () => {
    const { repo, remoteDir, oid, objPath } = await setup('alpha');
    fs.rmSync(objPath, { force: true });
    fs.mkdirSync(objPath);
    const err = await pushObjects(repo, new LocalRemote(remoteDir), [oid]).catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/corrupt/);
  });

  it('a corrupt object another clone quarantined first is still reported corrupt', async () => {
    const { repo, remoteDir, oid, objPath } = await setup('alpha');
    fs.chmodSync(objPath, 0o644);
    fs.writeFileSync(objPath, 'rotted');
    // The other clone's push quarantines it while this one hashes it.
    const realReadFile = fs.promises.readFile;
    const spy = Object.assign(fs.promises, {
      readFile: async (...args: Parameters<typeof realReadFile>) => {
        const data = await realReadFile(...args);
        if (args[0] === objPath) await new Cache(repo).quarantine(oid);
        return data;
      },
    });
    try {
      const err = await pushObjects(repo, new LocalRemote(remoteDir), [oid]).catch((e) => e);
      expect(err).toBeInstanceOf(IntegrityError);
      expect(err.message).toMatch(/corrupt \(quarantined\)/);
    } finally {
      spy.readFile = realReadFile;
    }
  });
});
