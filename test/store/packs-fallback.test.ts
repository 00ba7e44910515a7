/**
 * A remote that holds a directory's files both in packs and loose (pushed loose by an older
 * lockstep, then in packs) must serve them when a pack cannot be read: a damaged pack, or one
 * deleted after it was found, falls back to the loose copies (pull, checkout, direct checkout,
 * the cache's healing read). Without loose copies, a pack that is gone fails naming the pack.
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { isArtifactCurrent, readManifest } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { packGroups } from '../../lib/store/packs.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { objectKey, type Remote } from '../../lib/store/remote.ts';
import { BUCKET, PREFIX, pushedArtifact, remoteOn, repoIn, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();

function smallFiles(n: number): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`clip-${i}.txt`] = randomBytes(500).toString('hex');
  return files;
}

const packNames = () => fx.fake.names(BUCKET).filter((n) => n.startsWith(`${PREFIX}/packs/`));

/** Flips one byte of every pack on the remote. */
function damagePacks(): void {
  for (const name of packNames()) {
    const data = Buffer.from(fx.fake.object(BUCKET, name)!.data);
    data[3] = data[3]! ^ 0xff;
    fx.fake.putObject(BUCKET, name, data);
  }
}

/** A directory pushed in packs and, by an older lockstep, loose. */
async function packedAndLoose(files: Record<string, string>) {
  const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
  expect(packNames().length).toBeGreaterThan(0);
  await pushedArtifact(fx.fake, fx.dir, 'data/clips', files, { loose: true });
  return ref;
}

function expectFiles(root: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files))
    expect(fs.readFileSync(path.join(root, 'data/clips', rel), 'utf8')).toBe(text);
}

describe('a pack that cannot be read, with loose copies of its files on the remote', () => {
  for (const direct of [false, true]) {
    it(`a damaged pack: ${direct ? 'a direct checkout' : 'a checkout'} takes the loose copies`, async () => {
      const files = smallFiles(120);
      const ref = await packedAndLoose(files);
      damagePacks();
      const repo = repoIn(fx.dir);
      await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct });
      expectFiles(repo.root, files);
      expect(await isArtifactCurrent(repo, ref)).toBe(true);
    });
  }

  it('a pack deleted after it was found: the checkout takes the loose copies', async () => {
    const files = smallFiles(120);
    const ref = await packedAndLoose(files);
    const remote = remoteOn(fx.fake);
    const get = remote.get.bind(remote);
    remote.get = async (oid, dest, options) => {
      if (oid.startsWith('pack-')) fx.fake.deleteObject(BUCKET, `${PREFIX}/${objectKey(oid)}`);
      return get(oid, dest, options);
    };
    const repo = repoIn(fx.dir);
    await checkoutArtifact(repo, ref, { remote });
    expectFiles(repo.root, files);
  });

  it("the cache's healing read of a corrupt member takes its loose copy", async () => {
    const files = smallFiles(120);
    const ref = await packedAndLoose(files);
    const repo = repoIn(fx.dir);
    const cache = new Cache(repo, { remote: remoteOn(fx.fake) });
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake) });
    const { entries } = await readManifest(cache, ref);
    const member = packGroups(entries)[0]!.members[0]!;
    const file = cache.objectPath(member.oid);
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, 'not these bytes');
    damagePacks();
    const bytes = await cache.readBytes(member.oid, { manifest: ref.hash });
    expect(bytes.length).toBe(member.size);
    expect(await new Cache(repo).verify(member.oid)).toBe(true);
  });
});

describe('a pack deleted after it was found, with no loose copies', () => {
  for (const kind of ['gcs', 'local'] as const) {
    it(`fails the checkout in one line naming the pack and the fix; nothing lands (${kind})`, async () => {
      const files = smallFiles(120);
      const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
      let remote: Remote = remoteOn(fx.fake);
      let drop = (oid: string) => fx.fake.deleteObject(BUCKET, `${PREFIX}/${objectKey(oid)}`);
      if (kind === 'local') {
        // The same objects, copied to a directory remote.
        const local = new LocalRemote(path.join(fx.dir, 'remote'));
        for (const name of fx.fake.names(BUCKET)) {
          const file = path.join(local.root, name.slice(PREFIX.length + 1));
          fs.mkdirSync(path.dirname(file), { recursive: true });
          fs.writeFileSync(file, fx.fake.object(BUCKET, name)!.data);
        }
        remote = local;
        drop = (oid) => fs.rmSync(path.join(local.root, objectKey(oid)));
      }
      const get = remote.get.bind(remote);
      remote.get = async (oid, dest, options) => {
        if (oid.startsWith('pack-')) drop(oid);
        return get(oid, dest, options);
      };
      const repo = repoIn(fx.dir);
      const err = (await checkoutArtifact(repo, ref, { remote }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).not.toContain('\n');
      expect(err.message).toMatch(/packs\/[0-9a-f]{2}\/[0-9a-f]{62}: remote pack is gone/);
      expect(err.message).toMatch(/lockstep push/);
      expect(fs.existsSync(path.join(repo.root, 'data'))).toBe(false);
      // Nothing half-written in the cache's temp files.
      const tmp = path.join(repo.cacheDir, 'tmp');
      expect(fs.existsSync(tmp) ? fs.readdirSync(tmp) : []).toEqual([]);
    });
  }
});
