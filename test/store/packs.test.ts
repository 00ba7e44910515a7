/**
 * Packs of a directory's small files (lib/store/packs.ts), through the real storage client
 * against the fake GCS server: the groups follow from the manifest alone and change locally when
 * a file is added; a push sends a few packs instead of one upload per file, and a second push,
 * a push of a version with one more file, or of files the remote holds loose, sends (almost)
 * nothing; a pull, a checkout and a direct checkout read the packs; a damaged or missing pack
 * fails with the pack named and leaves the workspace as it was; `gc --remote` keeps the packs of
 * kept lockfiles and deletes the others; `status --remote` and a local (file://) remote see
 * packed files as there.
 */
import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emptyLockfile, serializeLockfile } from '../../lib/lockfile.ts';
import { artifactObjects, commitArtifact, isArtifactCurrent } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import {
  PACK_MAX_BYTES,
  PACK_MAX_MEMBERS,
  PACK_MEMBER_MAX_BYTES,
  packGroups,
  remoteHolds,
} from '../../lib/store/packs.ts';
import { collectRemoteGarbage } from '../../lib/store/remote-gc.ts';
import { objectKey } from '../../lib/store/remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import type { ArtifactRef } from '../../lib/types.ts';
import { createTmpRepo } from '../support/tmp-repo.ts';
import { BUCKET, PREFIX, pushedArtifact, remoteOn, repoIn, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();
const freshRepo = () => repoIn(fx.dir);
const DAY = 24 * 3600 * 1000;

const randomOid = () => randomBytes(32).toString('hex');

/** `n` small files of random bytes (a clip-sized dataset). */
function smallFiles(n: number, size = 2000): Record<string, string> {
  const files: Record<string, string> = {};
  for (let i = 0; i < n; i++) files[`spk${i % 7}/clip-${i}.txt`] = randomBytes(size / 2).toString('hex');
  return files;
}

/** How `files` travel: their packs, and the files of no pack (a group of one stays loose). */
function layout(files: Record<string, string>): { packs: number; loose: number } {
  const entries = Object.values(files).map((text) => ({
    sha256: createHash('sha256').update(text).digest('hex'),
    size: Buffer.byteLength(text),
  }));
  const groups = packGroups(entries);
  const packed = new Set(groups.flatMap((g) => g.members.map((m) => m.oid)));
  return {
    packs: groups.length,
    loose: new Set(entries.map((e) => e.sha256).filter((o) => !packed.has(o))).size,
  };
}

const packNames = () => fx.fake.names(BUCKET).filter((n) => n.startsWith(`${PREFIX}/packs/`));

function read(root: string, rel: string): string {
  return fs.readFileSync(path.join(root, rel), 'utf8');
}

describe('pack groups', () => {
  it('follow from the entries alone, within the limits, and leave large files and singletons loose', () => {
    const entries = Array.from({ length: 3000 }, () => ({
      sha256: randomOid(),
      size: Math.floor(Math.random() * 60_000),
    }));
    entries.push({ sha256: randomOid(), size: PACK_MEMBER_MAX_BYTES + 1 });
    const groups = packGroups(entries);
    expect(packGroups([...entries].reverse())).toEqual(groups);
    const members = groups.flatMap((g) => g.members.map((m) => m.oid));
    expect(new Set(members).size).toBe(members.length);
    expect(members).not.toContain(entries.at(-1)!.sha256);
    for (const g of groups) {
      expect(g.members.length).toBeGreaterThanOrEqual(2);
      expect(g.members.length).toBeLessThanOrEqual(PACK_MAX_MEMBERS);
      expect(g.bytes).toBeLessThanOrEqual(PACK_MAX_BYTES);
      expect(g.bytes).toBe(g.members.reduce((n, m) => n + m.size, 0));
      expect(g.id).toMatch(/^pack-[0-9a-f]{64}$/);
    }
    // About one pack per 64 files, not one per file nor one for all.
    expect(groups.length).toBeGreaterThan(3000 / 200);
    expect(groups.length).toBeLessThan(3000 / 20);
    // Duplicates and order do not matter; an entry of the same bytes twice is one member.
    expect(packGroups([...entries, entries[0]!])).toEqual(groups);
  });

  it('change in one place, two or three at most, when a file is added or removed', () => {
    // Fixed oids, so the figure is the same every run.
    const oid = (s: string) => createHash('sha256').update(s).digest('hex');
    const entries = Array.from({ length: 2000 }, (_, i) => ({ sha256: oid(`entry ${i}`), size: 20_000 }));
    const before = new Set(packGroups(entries).map((g) => g.id));
    const changed: number[] = [];
    for (let trial = 0; trial < 20; trial++) {
      const added = packGroups([...entries, { sha256: oid(`added ${trial}`), size: 20_000 }]);
      changed.push(added.filter((g) => !before.has(g.id)).length);
      const removed = packGroups(entries.filter((_, i) => i !== trial * 97));
      changed.push(removed.filter((g) => !before.has(g.id)).length);
    }
    // A run between two content-defined cuts longer than a pack holds is cut by size too, and
    // those cuts shift with the change (up to the next content-defined one): rare.
    expect(Math.max(...changed)).toBeLessThanOrEqual(3);
    expect(changed.reduce((a, b) => a + b, 0) / changed.length).toBeLessThanOrEqual(1.5);
  });
});

describe('push and pull through packs', () => {
  it('a push sends a few packs, a second push nothing, and a fresh clone pulls them back', async () => {
    // Random files are now and then cut into one pack; the test is about several.
    let files = smallFiles(300);
    while (layout(files).packs < 2) files = smallFiles(300);
    const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
    const uploads = fx.fake.count('upload');
    const packs = packNames();
    // The manifest and the packs: a handful, where there were 301 uploads.
    expect(packs.length).toBeGreaterThan(1);
    const { packs: expected, loose } = layout(files);
    expect(packs.length).toBe(expected);
    expect(uploads).toBe(1 + packs.length + loose);
    expect(fx.fake.names(BUCKET).filter((n) => n.startsWith(`${PREFIX}/sha256/`))).toHaveLength(1 + loose);

    const repo = freshRepo();
    fx.fake.resetLog();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake) });
    for (const [rel, text] of Object.entries(files)) expect(read(repo.root, `data/clips/${rel}`)).toBe(text);
    expect(fx.fake.count('download')).toBe(1 + packs.length + loose);
    expect(await isArtifactCurrent(repo, ref)).toBe(true);

    // The clone now pushes nothing.
    fx.fake.resetLog();
    const cache = new Cache(repo);
    const again = await pushObjects(repo, remoteOn(fx.fake), await artifactObjects(repo, ref, { cache }));
    expect(again.transferred).toBe(0);
    expect(fx.fake.count('upload')).toBe(0);
  });

  it('a version with one more file uploads one or two packs; the rest are shared', async () => {
    const files = smallFiles(400);
    await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
    const before = new Set(packNames());
    fx.fake.resetLog();
    await pushedArtifact(fx.fake, fx.dir, 'data/clips', { ...files, 'spk0/new.txt': 'a new clip\n' });
    const fresh = packNames().filter((n) => !before.has(n));
    expect(fresh.length).toBeLessThanOrEqual(2);
    // The new manifest and the changed packs only.
    // The new manifest, and the changed packs (the new file may be a group of its own, sent loose).
    expect(fx.fake.count('upload')).toBeGreaterThanOrEqual(2);
    expect(fx.fake.count('upload')).toBeLessThanOrEqual(2 + fresh.length);
  });

  it('files the remote holds loose (pushed before packs) are not sent again, and pull from there', async () => {
    const files = smallFiles(80);
    const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files, { loose: true });
    fx.fake.resetLog();
    const again = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
    expect(again.hash).toBe(ref.hash);
    expect(fx.fake.count('upload')).toBe(0);
    expect(packNames()).toEqual([]);
    const repo = freshRepo();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    for (const [rel, text] of Object.entries(files)) expect(read(repo.root, `data/clips/${rel}`)).toBe(text);
  });

  it('a direct checkout writes pack members straight into place, and keeps only the manifest', async () => {
    const files = { ...smallFiles(120), 'copy-a.txt': 'same\n', 'copy-b.txt': 'same\n', 'empty.txt': '' };
    const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
    const repo = freshRepo();
    fx.fake.resetLog();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    for (const [rel, text] of Object.entries(files)) expect(read(repo.root, `data/clips/${rel}`)).toBe(text);
    expect(fs.statSync(path.join(repo.root, 'data/clips/copy-b.txt')).mode & 0o777).toBe(0o644);
    const { loose } = layout(files);
    // Duplicates and the empty file are one object each, inside a pack or loose.
    expect(fx.fake.count('download')).toBe(1 + packNames().length + loose);
    const cached = fs
      .readdirSync(path.join(repo.stateDir, 'cache', 'sha256'), { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile());
    expect(cached).toHaveLength(1);
    expect(await isArtifactCurrent(repo, ref)).toBe(true);
  });

  it('a pack larger than the remote sends in one request goes up resumably, from a file', async () => {
    const files = smallFiles(100, 20_000);
    const repo = repoIn(fx.dir);
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(repo.root, 'data/clips', rel)), { recursive: true });
      fs.writeFileSync(path.join(repo.root, 'data/clips', rel), text);
    }
    const cache = new Cache(repo);
    const ref = await commitArtifact(repo, 'data/clips', { cache });
    const remote = remoteOn(fx.fake, { resumableThreshold: 64 * 1024 });
    await pushObjects(repo, remote, await artifactObjects(repo, ref, { cache }), { manifests: [ref.hash] });
    // Packs over 64 KiB (most: about 64 files of 20 KB each) go through resumable sessions.
    const big = packNames().filter((n) => fx.fake.object(BUCKET, n)!.data.length >= 64 * 1024);
    expect(big.length).toBeGreaterThan(0);
    expect(fx.fake.count('upload-init')).toBe(big.length);
    expect(fs.readdirSync(path.join(repo.stateDir, 'cache', 'tmp'))).toEqual([]);
    const fresh = freshRepo();
    await checkoutArtifact(fresh, ref, { remote: remoteOn(fx.fake) });
    for (const [rel, text] of Object.entries(files)) expect(read(fresh.root, `data/clips/${rel}`)).toBe(text);
  });

  it('a pack download dropped mid-body resumes', async () => {
    const files = smallFiles(100, 20_000);
    const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
    fx.fake.inject({ kind: 'download', dropAfterBytes: 5000, times: 2, nameIncludes: '/packs/' });
    const repo = freshRepo();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake, { maxRetryDelay: 5 }), direct: true });
    for (const [rel, text] of Object.entries(files)) expect(read(repo.root, `data/clips/${rel}`)).toBe(text);
  });
});

describe('a damaged or missing pack', () => {
  /** Replaces one byte of a member inside a pack (the fake stores fresh crc32c and md5 for it). */
  function damageAPack(): string {
    const name = packNames()[0]!;
    const data = Buffer.from(fx.fake.object(BUCKET, name)!.data);
    data[7] = data[7]! ^ 0xff;
    fx.fake.putObject(BUCKET, name, data);
    return name;
  }

  for (const direct of [false, true]) {
    it(`fails ${direct ? 'a direct checkout' : 'a checkout'} with the pack named; nothing of it lands`, async () => {
      const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', smallFiles(150));
      const name = damageAPack();
      const repo = freshRepo();
      fs.mkdirSync(path.join(repo.root, 'data/clips'), { recursive: true });
      fs.writeFileSync(path.join(repo.root, 'data/clips/old.txt'), 'before\n');
      await expect(checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct })).rejects.toThrow(
        new RegExp(`${name.slice(PREFIX.length + 1)}: remote pack does not match the files it holds`),
      );
      expect(fs.readdirSync(path.join(repo.root, 'data'))).toEqual(['clips']);
      expect(fs.readdirSync(path.join(repo.root, 'data/clips'))).toEqual(['old.txt']);
      // No member of the damaged pack entered the cache.
      const cache = new Cache(repo, { remote: remoteOn(fx.fake) });
      await artifactObjects(repo, ref, { cache }); // the manifest, pulled into the cache
      const manifestGroups = packGroups(
        (
          JSON.parse(fs.readFileSync(cache.objectPath(ref.hash), 'utf8')) as {
            entries: Array<{ sha256: string; size: number }>;
          }
        ).entries,
      );
      const damaged = manifestGroups.find((g) => `${PREFIX}/${objectKey(g.id)}` === name)!;
      expect(damaged).toBeDefined();
      expect(damaged.members.some((m) => cache.hasSync(m.oid))).toBe(false);
    });
  }

  it('a pack the remote lacks, with no loose copies, fails before anything is written', async () => {
    const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', smallFiles(150));
    fx.fake.deleteObject(BUCKET, packNames()[0]!);
    const repo = freshRepo();
    await expect(checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true })).rejects.toThrow(
      /data\/clips: object is missing from the cache/,
    );
    expect(fs.existsSync(path.join(repo.root, 'data'))).toBe(false);
    const held = await remoteHolds(new Cache(repo), remoteOn(fx.fake), [ref.hash]);
    expect(held.has(ref.hash)).toBe(true);
  });
});

describe('gc --remote and status with packs', () => {
  it('keeps the packs of kept lockfiles and deletes the packs of dropped ones', async () => {
    const t = await createTmpRepo();
    try {
      const cache = new Cache(t.repo);
      const commitDir = async (files: Record<string, string>, message: string): Promise<ArtifactRef> => {
        fs.rmSync(path.join(t.root, 'data'), { recursive: true, force: true });
        for (const [rel, text] of Object.entries(files)) t.write(`data/clips/${rel}`, text);
        const ref = await commitArtifact(t.repo, 'data/clips', { cache });
        await pushObjects(t.repo, remoteOn(fx.fake), await artifactObjects(t.repo, ref, { cache }));
        const lock = emptyLockfile();
        lock.data[ref.path] = { hash: ref.hash, size: ref.size, nfiles: ref.nfiles, dir: true };
        t.write('artifacts.lock.yaml', serializeLockfile(lock));
        t.commit(message);
        return ref;
      };
      const oldFiles = smallFiles(200);
      await commitDir(oldFiles, 'old');
      const oldPacks = new Set(packNames());
      // 200 random files are cut into about three packs, now and then into one: the test needs
      // several, so it draws files until their content-defined cuts give that.
      let newFiles = smallFiles(200);
      while (layout(newFiles).packs < 2) newFiles = smallFiles(200);
      const kept = await commitDir(newFiles, 'new');
      const keptPacks = packNames().filter((n) => !oldPacks.has(n));
      expect(keptPacks.length).toBe(layout(newFiles).packs);
      // The old version leaves the kept history; everything is old enough to go.
      t.git('checkout', '-q', '--orphan', 'fresh');
      t.git('commit', '-q', '-m', 'only the new version');
      t.git('branch', '-D', 'main');
      t.git('branch', '-m', 'main');
      const plan = await collectRemoteGarbage(t.repo, remoteOn(fx.fake), {
        apply: true,
        now: Date.now() + 2 * DAY,
      });
      expect(plan.deleted).toBeGreaterThan(0);
      expect(packNames().sort()).toEqual(keptPacks.sort());
      const repo = freshRepo();
      await checkoutArtifact(repo, kept, { remote: remoteOn(fx.fake) });
      expect(await isArtifactCurrent(repo, kept)).toBe(true);
    } finally {
      await t.cleanup();
    }
  });

  it('remoteHolds counts packed files as there once the manifest is known', async () => {
    const files = smallFiles(90);
    const ref = await pushedArtifact(fx.fake, fx.dir, 'data/clips', files);
    const repo = freshRepo();
    const cache = new Cache(repo, { remote: remoteOn(fx.fake) });
    const oids = await artifactObjects(repo, ref, { cache });
    const held = await remoteHolds(cache, remoteOn(fx.fake), oids);
    expect(oids.every((o) => held.has(o))).toBe(true);
    fx.fake.deleteObject(BUCKET, packNames()[0]!);
    const after = await remoteHolds(cache, remoteOn(fx.fake), oids);
    expect(after.size).toBeLessThan(held.size);
  });
});

describe('a local directory remote', () => {
  it('stores packs under packs/, lists them, and pulls from them', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-packs-local-'));
    try {
      const remote = new LocalRemote(path.join(dir, 'remote'));
      const src = repoIn(dir);
      const files = smallFiles(100);
      for (const [rel, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(src.root, 'data/clips', rel)), { recursive: true });
        fs.writeFileSync(path.join(src.root, 'data/clips', rel), text);
      }
      const cache = new Cache(src);
      const ref = await commitArtifact(src, 'data/clips', { cache });
      const pushed = await pushObjects(src, remote, await artifactObjects(src, ref, { cache }));
      expect(pushed.transferred).toBe(101);
      const listed: string[] = [];
      for await (const id of remote.list()) listed.push(id);
      const packs = listed.filter((id) => id.startsWith('pack-'));
      expect(packs.length).toBeGreaterThan(0);
      expect(listed.length).toBe(1 + packs.length + layout(files).loose);
      for (const id of packs) {
        const bytes = fs.readFileSync(path.join(remote.root, objectKey(id)));
        expect(createHash('sha256').update(bytes).digest('hex')).not.toBe(id.slice(5));
      }
      const repo = repoIn(dir);
      await checkoutArtifact(repo, ref, { remote });
      for (const [rel, text] of Object.entries(files))
        expect(read(repo.root, `data/clips/${rel}`)).toBe(text);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
