/**
 * A checkout where the path holds the other kind: a single file where a directory artifact goes
 * (a dataset that grew from one file to many), or a directory where a file artifact goes. The
 * rename that puts the checkout in place cannot replace one kind with the other, so what is there
 * is moved aside first; through the cache and straight from a remote (a Vertex AI job's inputs).
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { Cache } from '../../lib/store/cache.ts';
import { artifactObjects, commitArtifact } from '../../lib/store/artifacts.ts';
import { checkoutArtifact } from '../../lib/store/checkout.ts';
import { LocalRemote } from '../../lib/store/local-remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-kind-'));
  dirs.push(d);
  return d;
}

function write(repo: Repo, rel: string, text: string): void {
  const abs = path.join(repo.root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, text);
}

describe('checkout over the other kind of path', () => {
  for (const direct of [false, true]) {
    const how = direct ? 'straight from the remote' : 'through the cache';

    it(`a directory artifact where a file is, ${how}`, async () => {
      const src = repoAt(tmp());
      write(src, 'data/in/a.txt', 'alpha\n');
      write(src, 'data/in/sub/b.txt', 'beta\n');
      const cache = new Cache(src);
      const ref = await commitArtifact(src, 'data/in', { cache });
      const remote = new LocalRemote(tmp());
      await pushObjects(src, remote, await artifactObjects(src, ref, { cache }));
      const repo = direct ? repoAt(tmp()) : src;
      fs.rmSync(path.join(repo.root, 'data/in'), { recursive: true, force: true });
      write(repo, 'data/in', 'one file, before the dataset grew\n');
      await checkoutArtifact(repo, ref, { remote, direct });
      expect(fs.readFileSync(path.join(repo.root, 'data/in/a.txt'), 'utf8')).toBe('alpha\n');
      expect(fs.readFileSync(path.join(repo.root, 'data/in/sub/b.txt'), 'utf8')).toBe('beta\n');
      expect(fs.readdirSync(path.join(repo.root, 'data'))).toEqual(['in']);
    });

    it(`a file artifact where a directory is, ${how}`, async () => {
      const src = repoAt(tmp());
      write(src, 'model.bin', 'weights\n');
      const cache = new Cache(src);
      const ref = await commitArtifact(src, 'model.bin', { cache });
      const remote = new LocalRemote(tmp());
      await pushObjects(src, remote, await artifactObjects(src, ref, { cache }));
      const repo = direct ? repoAt(tmp()) : src;
      fs.rmSync(path.join(repo.root, 'model.bin'), { force: true });
      write(repo, 'model.bin/shard-0', 'a directory of shards\n');
      await checkoutArtifact(repo, ref, { remote, direct });
      expect(fs.readFileSync(path.join(repo.root, 'model.bin'), 'utf8')).toBe('weights\n');
      expect(fs.readdirSync(repo.root).filter((n) => n !== '.lockstep')).toEqual(['model.bin']);
    });
  }
});
