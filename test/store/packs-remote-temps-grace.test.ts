/**
 * `gc --remote` on a directory remote removes the temps (`tmp/<pid>-<hex>`) that puts of a killed
 * push left, once older than the grace period. With `--grace 0` (or a short one on a clock ahead of the remote's)
 * that took the temp of a put still in flight in another process, whose push then failed when it
 * linked the temp into place. A temp younger than an hour stays, whatever the grace.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emptyLockfile, serializeLockfile } from '../../lib/lockfile.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { collectRemoteGarbage } from '../../lib/store/remote-gc.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const HOUR = 3600 * 1000;
const repos: TmpRepo[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const t of repos.splice(0)) await t.cleanup();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('gc --remote with a short grace period and a put in flight', () => {
  it('keeps a temp written a moment ago and removes one left hours ago', async () => {
    const t = await createTmpRepo();
    repos.push(t);
    t.write('artifacts.lock.yaml', serializeLockfile(emptyLockfile()));
    t.commit('lockfile');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-remote-temps-grace-'));
    dirs.push(dir);
    const remote = new LocalRemote(path.join(dir, 'remote'));
    const tmp = path.join(remote.root, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    // A put of another push, written and not yet linked; and what a push killed hours ago left.
    const inFlight = path.join(tmp, `4343-${randomBytes(8).toString('hex')}`);
    const left = path.join(tmp, `4242-${randomBytes(8).toString('hex')}`);
    fs.writeFileSync(inFlight, randomBytes(10_000));
    fs.writeFileSync(left, randomBytes(10_000));
    const old = new Date(Date.now() - 3 * HOUR);
    fs.utimesSync(left, old, old);
    const written = fs.statSync(inFlight).mtimeMs;

    // --grace 0, a second after the put wrote its temp: the one left hours ago goes, not the other.
    const zero = await collectRemoteGarbage(t.repo, remote, { apply: true, graceMs: 0, now: written + 1000 });
    expect(zero.staleTemps).toBe(1);
    expect(fs.readdirSync(tmp)).toEqual([path.basename(inFlight)]);
    // A grace of 30 min on a clock 40 min ahead of the remote's.
    const ahead = await collectRemoteGarbage(t.repo, remote, {
      apply: true,
      graceMs: HOUR / 2,
      now: written + (2 * HOUR) / 3,
    });
    expect(ahead.staleTemps).toBe(0);
    expect(fs.readdirSync(tmp)).toEqual([path.basename(inFlight)]);
    // Once it is over an hour old (and past the grace), it is taken as left by a killed push.
    const later = await collectRemoteGarbage(t.repo, remote, {
      apply: true,
      graceMs: 0,
      now: written + 2 * HOUR,
    });
    expect(later.staleTemps).toBe(1);
    expect(fs.readdirSync(tmp)).toEqual([]);
  });
});
