/**
 * `checkoutArtifact(..., { direct: true })`, the checkout of a Vertex AI job's inputs: objects
 * the cache lacks are downloaded from the remote straight to their place, verified there, and
 * not kept in the cache; what the cache has is copied out as usual. A remote object whose bytes
 * are not its name, or one the remote lacks, fails the checkout and leaves the old contents.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../../lib/repo.ts';
import { Cache } from '../../lib/store/cache.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import type { ArtifactRef } from '../../lib/types.ts';
import { BUCKET, keyOf, pushedArtifact, remoteOn, repoIn, sha256, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();
const freshRepo = () => repoIn(fx.dir);

const FILES: Record<string, string> = {
  'a.txt': 'alpha\n',
  'sub/b.txt': 'beta\n',
  'sub/deep/c.bin': 'x'.repeat(70_000),
  'twin-1.txt': 'same bytes\n',
  'twin-2.txt': 'same bytes\n',
};

/**
 * A directory artifact (with two files of the same bytes) committed and pushed from its own repo,
 * each file on its own (as before packs; test/store/packs.test.ts checks out from packs).
 */
async function pushedDir(): Promise<{ ref: ArtifactRef; files: Record<string, string> }> {
  return { ref: await pushedArtifact(fx.fake, fx.dir, 'data/in', FILES, { loose: true }), files: FILES };
}

function read(repo: Repo, rel: string): string {
  return fs.readFileSync(path.join(repo.root, rel), 'utf8');
}

function cachedObjects(repo: Repo): number {
  const dir = path.join(repo.stateDir, 'cache');
  if (!fs.existsSync(dir)) return 0;
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
}

describe('direct checkout', () => {
  it('downloads the files straight into place, verified, and keeps only the manifest in the cache', async () => {
    const { ref, files } = await pushedDir();
    const repo = freshRepo();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    for (const [rel, text] of Object.entries(files)) expect(read(repo, `data/in/${rel}`)).toBe(text);
    expect(fs.statSync(path.join(repo.root, 'data/in/a.txt')).mode & 0o777).toBe(0o644);
    // The manifest object only; the four distinct file objects were not copied into the cache.
    expect(cachedObjects(repo)).toBe(1);
    // The same bytes named twice are fetched once.
    const downloads = fx.fake.requests.filter((r) => r.kind === 'download').length;
    expect(downloads).toBe(1 + 4);
    // What was checked out is current: a second checkout does nothing.
    fx.fake.resetLog();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    expect(fx.fake.count('download')).toBe(0);
  });

  it('copies from the cache what it has and downloads only the rest', async () => {
    const { ref, files } = await pushedDir();
    const repo = freshRepo();
    const cache = new Cache(repo);
    await cache.insertBytes(Buffer.from(files['a.txt']!));
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    for (const [rel, text] of Object.entries(files)) expect(read(repo, `data/in/${rel}`)).toBe(text);
    expect(fx.fake.count('download')).toBe(1 + 3);
  });

  it('a remote object whose bytes are not its name fails with the remote named; the old contents stay', async () => {
    const { ref } = await pushedDir();
    const repo = freshRepo();
    fs.mkdirSync(path.join(repo.root, 'data/in'), { recursive: true });
    fs.writeFileSync(path.join(repo.root, 'data/in/old.txt'), 'before\n');
    // Stored whole with its own crc32c and md5, so only the sha256 check can tell.
    const oid = sha256('beta\n');
    fx.fake.putObject(BUCKET, keyOf(oid), Buffer.from('not beta\n'));
    await expect(checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true })).rejects.toThrow(
      /sha256\/.*: remote object does not match its sha256/,
    );
    expect(fs.readdirSync(path.join(repo.root, 'data'))).toEqual(['in']);
    expect(fs.readdirSync(path.join(repo.root, 'data/in'))).toEqual(['old.txt']);
  });

  it('an object the remote lacks fails before anything is written', async () => {
    const { ref } = await pushedDir();
    const repo = freshRepo();
    const oid = sha256('alpha\n');
    fx.fake.deleteObject(BUCKET, keyOf(oid));
    await expect(checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true })).rejects.toThrow(
      new RegExp(`data/in: object is missing from the cache.*${oid}`),
    );
    expect(fs.existsSync(path.join(repo.root, 'data'))).toBe(false);
  });
});
