/**
 * The promotion check that the stored model matches the lockfile reads every file of a model
 * directory, in a clone that may hold none of them (a CI runner). With the model's small files in
 * packs on the remote, each read fetched a whole pack for its one file: a model of 200 files in 4
 * packs was 200 pack downloads. A pack fetched for one file now leaves its other files in the cache.
 */
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { checkStoredMatchesLockfile } from '../../lib/promotion/checks.ts';
import { readManifest } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { packGroups } from '../../lib/store/packs.ts';
import { pushedArtifact, remoteOn, repoIn, useGcsFixture } from '../store/gcs-helpers.ts';

const fx = useGcsFixture();

describe('the stored-model check of a packed model directory in a fresh clone', () => {
  it('downloads each pack once, not once per file', async () => {
    // 200 random files are now and then cut into one pack; the test needs several, so it draws
    // files until their content-defined cuts give that.
    const draw = (): Record<string, string> => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 200; i++) files[`part-${i}.bin`] = randomBytes(300).toString('hex');
      return files;
    };
    const packsOf = (files: Record<string, string>) =>
      packGroups(
        Object.values(files).map((text) => ({
          sha256: createHash('sha256').update(text).digest('hex'),
          size: Buffer.byteLength(text),
        })),
      ).length;
    let files = draw();
    while (packsOf(files) < 2) files = draw();
    const model = await pushedArtifact(fx.fake, fx.dir, 'models/m', files);
    const repo = repoIn(fx.dir);
    const remote = remoteOn(fx.fake);
    const before = fx.fake.requests.length;
    const check = await checkStoredMatchesLockfile(repo, [model], model, remote);
    expect(check).toMatchObject({ ok: true });
    const packs = packGroups((await readManifest(new Cache(repo), model)).entries);
    expect(packs.length).toBeGreaterThan(1);
    const packDownloads = fx.fake.requests
      .slice(before)
      .filter((r) => r.kind === 'download' && r.name?.includes('/packs/'));
    expect(packDownloads.length).toBe(packs.length);
  });
});
