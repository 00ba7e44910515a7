/**
 * Direct checkouts (a Vertex AI job's inputs) of the shapes a user's data comes in: a single file
 * (new, or over an old one), empty files and duplicates, a download dropped mid-body or corrupt,
 * a checkout stopped halfway (nothing is left next to the target), and many downloads on one
 * signal (no listener warning).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { isArtifactCurrent } from '../../lib/store/artifacts.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { pushedArtifact, remoteOn, repoIn, useGcsFixture } from './gcs-helpers.ts';

const fx = useGcsFixture();
const pushed = (rel: string, files: Record<string, string> | string) =>
  pushedArtifact(fx.fake, fx.dir, rel, files, { loose: true });
const freshRepo = () => repoIn(fx.dir);

describe('direct checkout of the shapes data comes in', () => {
  it('a single-file dep is downloaded into place', async () => {
    const ref = await pushed('data/one.bin', 'hello one\n');
    const repo = freshRepo();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    expect(fs.readFileSync(path.join(repo.root, 'data/one.bin'), 'utf8')).toBe('hello one\n');
    expect(fs.readdirSync(path.join(repo.root, 'data'))).toEqual(['one.bin']);
    expect(await isArtifactCurrent(repo, ref)).toBe(true);
  });

  it('a single-file dep replaces the file there', async () => {
    const ref = await pushed('data/one.bin', 'hello one\n');
    const repo = freshRepo();
    fs.mkdirSync(path.join(repo.root, 'data'));
    fs.writeFileSync(path.join(repo.root, 'data/one.bin'), 'old');
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    expect(fs.readFileSync(path.join(repo.root, 'data/one.bin'), 'utf8')).toBe('hello one\n');
  });

  it('empty files and files of the same bytes all land', async () => {
    const files: Record<string, string> = { e1: '', e2: '', 'sub/e3': '', x: 'x' };
    const ref = await pushed('data/in', files);
    const repo = freshRepo();
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    for (const [f, t] of Object.entries(files))
      expect(fs.readFileSync(path.join(repo.root, 'data/in', f), 'utf8')).toBe(t);
    expect(await isArtifactCurrent(repo, ref)).toBe(true);
  });

  it('a download dropped mid-body resumes and the checkout completes', async () => {
    const ref = await pushed('data/in', { big: 'y'.repeat(300_000), small: 'z' });
    const repo = freshRepo();
    fx.fake.inject({ kind: 'download', dropAfterBytes: 1000, times: 2, nameIncludes: 'sha256/' });
    await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true });
    expect(fs.readFileSync(path.join(repo.root, 'data/in/big'), 'utf8')).toBe('y'.repeat(300_000));
  });

  it('a corrupt download is fetched again, or fails and leaves nothing', async () => {
    const ref = await pushed('data/in', { big: 'y'.repeat(300_000), small: 'z' });
    const repo = freshRepo();
    fx.fake.inject({ kind: 'download', corrupt: true, times: Infinity, nameIncludes: 'sha256/' });
    await expect(checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true })).rejects.toThrow();
    const left = fs.existsSync(path.join(repo.root, 'data'))
      ? fs.readdirSync(path.join(repo.root, 'data'))
      : [];
    expect(left).toEqual([]);
  });

  it('a checkout stopped halfway leaves no temp dir next to the target', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`f${i}`] = `content ${i}\n`.repeat(100);
    const ref = await pushed('data/in', files);
    const repo = freshRepo();
    const ac = new AbortController();
    fx.fake.inject({ kind: 'download', delayMs: 100, times: Infinity, nameIncludes: 'sha256/' });
    const p = checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('stop')), 400);
    await expect(p).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 500));
    const left = fs.existsSync(path.join(repo.root, 'data'))
      ? fs.readdirSync(path.join(repo.root, 'data'))
      : [];
    expect(left).toEqual([]);
  });

  it('many downloads on one signal print no listener warning', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on('warning', onWarning);
    try {
      const files: Record<string, string> = {};
      for (let i = 0; i < 80; i++) files[`f${i}`] = `content ${i}\n`.repeat(100);
      const ref = await pushed('data/in', files);
      const repo = freshRepo();
      const signal = new AbortController().signal;
      fx.fake.inject({ kind: 'download', delayMs: 40, times: Infinity });
      await checkoutArtifact(repo, ref, { remote: remoteOn(fx.fake), direct: true, signal });
      await new Promise((r) => setImmediate(r));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
