import { describe, expect, it, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Cache } from '../../lib/store/cache.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { IntegrityError } from '../../lib/errors.ts';
import { memoryOutput } from '../../lib/output.ts';
import { makeRepo, tempDir, listObjects, rmrf } from './helpers.ts';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(() => cleanup.splice(0).forEach(rmrf));

describe('Cache', () => {
  it('Cache insertBytes stores read-only objects at sha256/ab/cdef paths', async () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    const cache = new Cache(repo);
    const oid = await cache.insertBytes(Buffer.from('hello'));
    expect(oid).toBe(sha('hello'));
    expect(cache.objectPath(oid)).toBe(path.join(repo.cacheDir, 'sha256', oid.slice(0, 2), oid.slice(2)));
    expect(fs.statSync(cache.objectPath(oid)).mode & 0o777).toBe(0o444);
    expect(await cache.has(oid)).toBe(true);
    expect(await cache.has(sha('other'))).toBe(false);
    expect((await cache.readBytes(oid)).toString()).toBe('hello');
  });

  it('Cache insertFile copies by default and moves with move: true', async () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    const cache = new Cache(repo);
    const src = path.join(repo.root, 'a.txt');
    fs.writeFileSync(src, 'abc');
    const copied = await cache.insertFile(src);
    expect(copied).toEqual({ oid: sha('abc'), size: 3 });
    expect(fs.existsSync(src)).toBe(true);
    fs.writeFileSync(src, 'moved content');
    const moved = await cache.insertFile(src, { move: true });
    expect(moved.oid).toBe(sha('moved content'));
    expect(fs.existsSync(src)).toBe(false);
    expect(fs.readFileSync(cache.objectPath(moved.oid), 'utf8')).toBe('moved content');
    expect(fs.readdirSync(path.join(repo.cacheDir, 'tmp'))).toEqual([]);
  });

  it('Cache readBytes quarantines a corrupt object and fails with IntegrityError without a remote', async () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    const cache = new Cache(repo);
    const oid = await cache.insertBytes(Buffer.from('precious'));
    fs.chmodSync(cache.objectPath(oid), 0o644);
    fs.writeFileSync(cache.objectPath(oid), 'garbage');
    const err = await cache.readBytes(oid).catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/corrupt.*lockstep pull/);
    expect(fs.existsSync(cache.objectPath(oid))).toBe(false);
    const quarantined = fs.readdirSync(path.join(repo.stateDir, 'quarantine'));
    expect(quarantined).toHaveLength(1);
    expect(quarantined[0]).toMatch(new RegExp(`^${oid}\\.`));
  });

  it('Cache readBytes re-fetches a corrupt object from the remote', async () => {
    const repo = makeRepo();
    const remoteDir = tempDir();
    cleanup.push(repo.root, remoteDir);
    const remote = new LocalRemote(remoteDir);
    const out = memoryOutput();
    const cache = new Cache(repo, { remote, out });
    const oid = await cache.insertBytes(Buffer.from('precious'));
    await remote.put(oid, cache.objectPath(oid));
    fs.chmodSync(cache.objectPath(oid), 0o644);
    fs.writeFileSync(cache.objectPath(oid), 'bit rot');
    expect((await cache.readBytes(oid)).toString()).toBe('precious');
    expect(fs.readFileSync(cache.objectPath(oid), 'utf8')).toBe('precious');
    expect(out.stderr.join('\n')).toMatch(/quarantined/);
  });

  it('Cache readBytes of a missing object names the path and says run lockstep pull', async () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    const err = await new Cache(repo).readBytes(sha('nope'), { path: 'data/x' }).catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/^data\/x: object is missing from the cache.*run lockstep pull/i);
  });

  it('Cache download refuses a corrupt remote object and leaves nothing in the cache', async () => {
    const repo = makeRepo();
    const remoteDir = tempDir();
    cleanup.push(repo.root, remoteDir);
    const oid = sha('real');
    const objPath = path.join(remoteDir, 'sha256', oid.slice(0, 2), oid.slice(2));
    fs.mkdirSync(path.dirname(objPath), { recursive: true });
    fs.writeFileSync(objPath, 'fake');
    const cache = new Cache(repo);
    const err = await cache.download(new LocalRemote(remoteDir), oid).catch((e) => e);
    expect(err).toBeInstanceOf(IntegrityError);
    expect(err.message).toMatch(/remote object does not match its sha256/);
    expect(listObjects(repo.cacheDir)).toEqual([]);
    expect(fs.readdirSync(path.join(repo.cacheDir, 'tmp'))).toEqual([]);
  });
});
