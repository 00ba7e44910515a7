import { describe, expect, it, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { openRemote } from '../../lib/store/open-remote.ts';
import { ConfigError } from '../../lib/errors.ts';
import { tempDir, rmrf } from './helpers.ts';

const sha = (b: string) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(() => cleanup.splice(0).forEach(rmrf));

describe('LocalRemote', () => {
  it('LocalRemote put, has, get and list use the cache layout', async () => {
    const dir = tempDir();
    cleanup.push(dir);
    const remote = new LocalRemote(path.join(dir, 'remote'));
    const src = path.join(dir, 'src');
    const oids = ['one', 'two', 'three'].map((s) => {
      fs.writeFileSync(src + s, s);
      return [sha(s), src + s] as const;
    });
    expect(await remote.has(oids.map(([o]) => o))).toEqual(new Set());
    for (const [oid, p] of oids.slice(0, 2)) await remote.put(oid, p);
    expect(await remote.has(oids.map(([o]) => o))).toEqual(new Set([oids[0]![0], oids[1]![0]]));
    const key = path.join(dir, 'remote', 'sha256', oids[0]![0].slice(0, 2), oids[0]![0].slice(2));
    expect(fs.readFileSync(key, 'utf8')).toBe('one');
    const dest = path.join(dir, 'got');
    await remote.get(oids[1]![0], dest);
    expect(fs.readFileSync(dest, 'utf8')).toBe('two');
    const listed: string[] = [];
    for await (const oid of remote.list()) listed.push(oid);
    expect(listed).toEqual([oids[0]![0], oids[1]![0]].sort());
    await expect(remote.get(oids[2]![0], path.join(dir, 'nope'))).rejects.toThrow(/ENOENT/);
    expect(fs.readdirSync(path.join(dir, 'remote', 'tmp'))).toEqual([]);
  });

  it('put stores the verified bytes it is given, not the file as it is now', async () => {
    const dir = tempDir();
    cleanup.push(dir);
    const remote = new LocalRemote(path.join(dir, 'remote'));
    const src = path.join(dir, 'src');
    // The object as verified, then changed on disk before the upload reads it.
    const good = Buffer.from('verified');
    fs.writeFileSync(src, 'changed after the check');
    expect(await remote.put(sha('verified'), src, { data: good })).toBe(true);
    const dest = path.join(dir, 'got');
    await remote.get(sha('verified'), dest);
    expect(fs.readFileSync(dest, 'utf8')).toBe('verified');
    expect(fs.readdirSync(path.join(dir, 'remote', 'tmp'))).toEqual([]);
  });

  it('openRemote accepts file URLs and paths and rejects unknown schemes', async () => {
    const dir = tempDir();
    cleanup.push(dir);
    expect((await openRemote(pathToFileURL(dir).href)).url).toBe(pathToFileURL(dir).href);
    expect((await openRemote('sub', { baseDir: dir })).url).toBe(pathToFileURL(path.join(dir, 'sub')).href);
    await expect(openRemote('s3://bucket/x')).rejects.toBeInstanceOf(ConfigError);
    await expect(openRemote('s3://bucket/x')).rejects.toThrow(
      /^remote url: unsupported scheme "s3:\/\/bucket\/x"/,
    );
  });
});
