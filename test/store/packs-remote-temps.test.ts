/**
 * A push to a directory remote writes each object or pack to `tmp/<pid>-<hex>` there and links it
 * into place; a push killed in between leaves that temp (a whole pack, up to 4 MiB) and nothing
 * removed it, on every kill, for good. `gc --remote` now counts the temps older than its grace
 * period and, with --force, removes them; younger ones (a push running now) stay.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emptyLockfile, serializeLockfile } from '../../lib/lockfile.ts';
import { artifactObjects, commitArtifact, isArtifactCurrent } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { collectRemoteGarbage } from '../../lib/store/remote-gc.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { repoAt } from '../../lib/repo.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const DAY = 24 * 3600 * 1000;
const repos: TmpRepo[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const t of repos.splice(0)) await t.cleanup();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('temps a killed push leaves on a directory remote', () => {
  it('gc --remote reports the stale ones, removes them with --force, and keeps a live push’s', async () => {
    const t = await createTmpRepo();
    repos.push(t);
    for (let i = 0; i < 100; i++) t.write(`data/clips/c${i}.txt`, randomBytes(400).toString('hex'));
    const cache = new Cache(t.repo);
    const ref = await commitArtifact(t.repo, 'data/clips', { cache });
    const lock = emptyLockfile();
    lock.data[ref.path] = { hash: ref.hash, size: ref.size, nfiles: ref.nfiles, dir: true };
    t.write('artifacts.lock.yaml', serializeLockfile(lock));
    t.commit('data');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-remote-temps-'));
    dirs.push(dir);
    const remote = new LocalRemote(path.join(dir, 'remote'));
    await pushObjects(t.repo, remote, await artifactObjects(t.repo, ref, { cache }));

    // What a put killed between writing its temp and linking it leaves, from a push two days ago
    // and from one running now.
    const tmp = path.join(remote.root, 'tmp');
    const stale = path.join(tmp, `4242-${randomBytes(8).toString('hex')}`);
    const live = path.join(tmp, `4343-${randomBytes(8).toString('hex')}`);
    fs.writeFileSync(stale, randomBytes(100_000));
    fs.writeFileSync(live, randomBytes(100_000));
    const old = new Date(Date.now() - 2 * DAY);
    fs.utimesSync(stale, old, old);

    const dry = await collectRemoteGarbage(t.repo, remote, {});
    expect(dry.staleTemps).toBe(1);
    expect(fs.existsSync(stale)).toBe(true);
    const done = await collectRemoteGarbage(t.repo, remote, { apply: true });
    expect(done).toMatchObject({ staleTemps: 1, deleted: 0 });
    expect(fs.readdirSync(tmp)).toEqual([path.basename(live)]);

    const clone = repoAt(fs.mkdtempSync(path.join(dir, 'clone-')));
    await checkoutArtifact(clone, ref, { remote });
    expect(await isArtifactCurrent(clone, ref)).toBe(true);
  });
});
