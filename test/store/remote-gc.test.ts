/**
 * `gc --remote`: retention by roots (environment branches over their last N commits, tags, the
 * default branch's last N commits, experiments), a grace period, deletes conditional on what the
 * listing saw, and a push running concurrently that marks what it relies on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { serializeLockfile, emptyLockfile } from '../../lib/lockfile.ts';
import { Cache } from '../../lib/store/cache.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { collectRemoteGarbage } from '../../lib/store/remote-gc.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { BUCKET, keyOf, remoteOn, sha256, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();
const DAY = 24 * 3600 * 1000;
const repos: TmpRepo[] = [];
afterEach(async () => {
  for (const r of repos.splice(0)) await r.cleanup();
});

/** An object on the remote (back-dated `ageMs`) and its oid. */
function remoteObject(ageMs: number): string {
  const data = randomBytes(64);
  const oid = sha256(data);
  fx.fake.putObject(BUCKET, keyOf(oid), data, { ageMs });
  return oid;
}

/** Commits a lockfile tracking `oids` as data files (one commit). */
function commitLock(t: TmpRepo, oids: string[], message: string): string {
  const lock = emptyLockfile();
  for (const [i, oid] of oids.entries()) lock.data[`data/f${i}.bin`] = { hash: oid, size: 64, nfiles: 1 };
  t.write('artifacts.lock.yaml', serializeLockfile(lock));
  return t.commit(message);
}

const present = (oid: string) => fx.fake.object(BUCKET, keyOf(oid)) !== undefined;

describe('gc --remote', () => {
  it('keeps what every kind of root references, deletes old unreferenced objects only with apply', async () => {
    const t = await createTmpRepo();
    repos.push(t);
    const [onMain, onTag, onProd, onExp, oldProd, garbage] = Array.from({ length: 6 }, () =>
      remoteObject(3 * DAY),
    );
    const young = remoteObject(60_000);
    // prod's branch: two deploys back still kept (keepLast 3), the tag and main as well.
    t.git('checkout', '-q', '-b', 'prod');
    commitLock(t, [oldProd], 'prod deploy 1');
    commitLock(t, [onProd], 'prod deploy 2');
    t.git('checkout', '-q', 'main');
    commitLock(t, [onTag], 'tagged');
    t.git('tag', 'v1');
    commitLock(t, [onExp], 'exp');
    t.git('update-ref', 'refs/exps/lr-small', 'HEAD');
    t.git('reset', '-q', '--hard', 'HEAD~1');
    commitLock(t, [onMain], 'main now');

    const remote = remoteOn(fx.fake);
    const dry = await collectRemoteGarbage(t.repo, remote, { keepLast: 3 });
    expect(dry).toMatchObject({ dryRun: true, candidates: 1, young: 1, deleted: 0, listed: 7 });
    expect(present(garbage)).toBe(true);
    expect(dry.roots.map((r) => r.kind)).toEqual(
      expect.arrayContaining(['environment', 'tag', 'default-branch', 'experiment']),
    );

    const done = await collectRemoteGarbage(t.repo, remote, { keepLast: 3, apply: true });
    expect(done.deleted).toBe(1);
    expect(present(garbage)).toBe(false);
    for (const oid of [onMain, onTag, onProd, onExp, oldProd, young]) expect(present(oid)).toBe(true);
    // keepLast 1: prod's first deploy is no longer a root.
    const tighter = await collectRemoteGarbage(t.repo, remote, { keepLast: 1, apply: true });
    expect(tighter.deleted).toBe(1);
    expect(present(oldProd)).toBe(false);
  });

  it('an object only an old experiment references survives until the experiment is removed', async () => {
    const t = await createTmpRepo();
    repos.push(t);
    const expOnly = remoteObject(30 * DAY);
    commitLock(t, [expOnly], 'experiment commit');
    t.git('update-ref', 'refs/exps/old-try', 'HEAD');
    t.git('reset', '-q', '--hard', 'HEAD~1');
    // Push the default branch's history far past it.
    for (let i = 0; i < 3; i++) t.commit(`later ${i}`);
    const remote = remoteOn(fx.fake);
    expect((await collectRemoteGarbage(t.repo, remote, { keepLast: 2, apply: true })).deleted).toBe(0);
    expect(present(expOnly)).toBe(true);
    t.git('update-ref', '-d', 'refs/exps/old-try');
    expect((await collectRemoteGarbage(t.repo, remote, { keepLast: 2, apply: true })).deleted).toBe(1);
    expect(present(expOnly)).toBe(false);
  });

  it('a malformed lockfile a root keeps stops the collection with one line naming the commit and a fix, and deletes nothing', async () => {
    const t = await createTmpRepo();
    repos.push(t);
    const old = remoteObject(30 * DAY);
    commitLock(t, [], 'nothing pinned');
    t.write('artifacts.lock.yaml', 'schema: 1\nstages: {\n');
    const bad = t.commit('a broken lockfile, kept by a tag');
    t.git('tag', 'broken');
    t.git('reset', '-q', '--hard', 'HEAD~1');
    const remote = remoteOn(fx.fake);
    const err = await collectRemoteGarbage(t.repo, remote, { keepLast: 2, apply: true }).catch(
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(
      `${bad.slice(0, 12)}:artifacts.lock.yaml:3: invalid YAML: Flow map in block collection must be sufficiently indented and end with a }. Commit a repaired artifacts.lock.yaml on the branch that holds ${bad.slice(0, 12)}, or delete the ref that keeps it.`,
    );
    expect(present(old)).toBe(true);
  });

  it('a push running while gc deletes keeps every object it relies on, new or already there', async () => {
    const t = await createTmpRepo();
    repos.push(t);
    const other = await createTmpRepo();
    repos.push(other);
    // The other clone is about to push a lockfile referencing an object that is on the remote,
    // old and (as far as gc can see) unreferenced, plus a brand new one.
    const cache = new Cache(other.repo);
    const reused = await cache.insertBytes(randomBytes(64));
    const fresh = await cache.insertBytes(randomBytes(64));
    fx.fake.putObject(BUCKET, keyOf(reused), (await cache.readBytes(reused)) as Buffer, { ageMs: 10 * DAY });
    const remote = remoteOn(fx.fake);
    const plan = await collectRemoteGarbage(t.repo, remote, {
      apply: true,
      // gc has listed (and chosen `reused`); the push happens before its deletes.
      beforeDelete: async () => {
        const r = await pushObjects(other.repo, remoteOn(fx.fake), [reused, fresh]);
        expect(r).toMatchObject({ transferred: 1, skipped: 1 });
      },
    });
    expect(plan).toMatchObject({ candidates: 1, deleted: 0, raced: 1 });
    expect(present(reused)).toBe(true);
    expect(present(fresh)).toBe(true);
    // And a gc that lists after the push sees both as changed within the grace period.
    expect(await collectRemoteGarbage(t.repo, remote, { apply: true })).toMatchObject({
      deleted: 0,
      young: 2,
    });
  });

  it('pages through 100,000 objects', async () => {
    const t = await createTmpRepo();
    repos.push(t);
    const old: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const data = Buffer.from(`object ${i}`);
      const oid = sha256(data);
      const ageMs = i % 200 === 0 ? 5 * DAY : 1000;
      fx.fake.putObject(BUCKET, keyOf(oid), data, { ageMs });
      if (ageMs > DAY) old.push(oid);
    }
    commitLock(t, old.slice(0, 100), 'keeps 100 of the old ones');
    fx.fake.resetLog();
    const started = Date.now();
    const plan = await collectRemoteGarbage(t.repo, remoteOn(fx.fake), { apply: true });
    const seconds = (Date.now() - started) / 1000;
    const lists = fx.fake.count('list');
    const deletes = fx.fake.count('delete');
    console.log(
      `gc --remote over 100,000 objects: ${lists} list requests, ${deletes} deletes, ${seconds.toFixed(1)} s`,
    );
    expect(plan).toMatchObject({ listed: 100_000, referenced: 100, candidates: 400, deleted: 400 });
    // 100 pages of objects, then one of packs (none).
    expect(lists).toBe(101);
    expect(deletes).toBe(400);
    expect(fx.fake.names(BUCKET)).toHaveLength(99_600);
  }, 180_000);
});

describe('lockstep gc --remote (a directory remote, through the CLI)', () => {
  it('reports by default, deletes with --force, and refuses --force without --remote', async () => {
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const fs = await import('node:fs');
    const path = await import('node:path');
    const { LocalRemote } = await import('../../lib/store/local-remote.ts');
    const run = promisify(execFile);
    const cli = path.resolve(import.meta.dirname, '../../bin/lockstep.mjs');
    const t = await createTmpRepo();
    repos.push(t);
    const dir = path.join(t.root, '..', path.basename(t.root) + '-remote');
    fs.mkdirSync(dir);
    const remote = new LocalRemote(dir);
    const src = path.join(dir, 'src');
    const oids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(32);
      fs.writeFileSync(src, data);
      oids.push(sha256(data));
      await remote.put(oids[i]!, src);
      const old = new Date(Date.now() - 3 * DAY);
      fs.utimesSync(path.join(dir, 'sha256', oids[i]!.slice(0, 2), oids[i]!.slice(2)), old, old);
    }
    fs.rmSync(src);
    commitLock(t, [oids[0]!], 'keeps one');
    const lockstep = (...args: string[]) =>
      run(process.execPath, [cli, ...args], { cwd: t.root, env: { ...process.env, NO_COLOR: '1' } }).then(
        (r) => ({ code: 0, out: r.stdout + r.stderr }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code ?? 1,
          out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
        }),
      );
    const dry = await lockstep('gc', '--remote', dir);
    expect(dry.code).toBe(0);
    expect(dry.out).toMatch(/listed 3 objects, 1 referenced.*would delete 2 \(/);
    const gone = () =>
      oids.filter((o) => !fs.existsSync(path.join(dir, 'sha256', o.slice(0, 2), o.slice(2))));
    expect(gone()).toEqual([]);
    const real = await lockstep('gc', '--remote', dir, '--force');
    expect(real.out).toMatch(/deleted 2 \(/);
    expect(gone().sort()).toEqual(oids.slice(1).sort());
    const refused = await lockstep('gc', '--force');
    expect(refused.code).toBe(2);
    expect(refused.out).toMatch(/--force and --grace apply to gc --remote/);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
