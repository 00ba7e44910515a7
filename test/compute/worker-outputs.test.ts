/**
 * A replica commits its stage's outputs by hard-linking them into its scratch cache: whatever
 * shapes a stage writes, the outputs it pushes are the very objects a copy would have made. A
 * symlink among them (`out/latest -> model.bin`) names the file it points to; link(2) does not
 * follow one, so linking the symlink itself failed the job when relative (the link dangled once in
 * the cache) and left an object that is a symlink into the workspace when absolute.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { runJob } from '../../lib/compute/worker.ts';
import { memoryOutput } from '../../lib/output.ts';
import { jobPaths, jobResultSchema } from '../../lib/compute/spec.ts';
import { codeFingerprint } from '../../lib/pipeline/fingerprint.ts';
import { repoAt } from '../../lib/repo.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { Cache } from '../../lib/store/cache.ts';
import { closeHashPool } from '../../lib/store/hasher.ts';
import { writeJobImage, writeJobSpec } from '../support/job-image.ts';

let dir: string | undefined;
afterEach(async () => {
  await closeHashPool();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Writes the stage's outputs under `root` (the body of its run, and of the local reference). */
const WRITE = `(root) => {
  const d = path.join(root, 'out/s');
  fs.mkdirSync(path.join(d, 'empty-dir'), { recursive: true });
  fs.mkdirSync(path.join(d, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(d, 'model.bin'), 'weights\\n');
  fs.writeFileSync(path.join(d, 'copy.bin'), 'weights\\n');
  fs.writeFileSync(path.join(d, 'e1'), '');
  fs.writeFileSync(path.join(d, 'e2'), '');
  fs.writeFileSync(path.join(d, 'sub/only.txt'), 'only reached through links\\n');
  fs.symlinkSync('model.bin', path.join(d, 'latest'));
  fs.symlinkSync(path.join(d, 'sub/only.txt'), path.join(d, 'abs-only'));
  fs.symlinkSync('sub/only.txt', path.join(d, 'rel-only'));
}`;

describe('a replica commits outputs of every shape as a copy would', () => {
  it('symlinks, empty files, duplicates and empty directories', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-worker-outs-'));
    const image = writeJobImage(
      dir,
      `import fs from 'node:fs';\nimport path from 'node:path';\nconst write = ${WRITE};\n` +
        `export function pipeline() { return [{ name: 's', deps: [], outs: ['out/s'], code: ['stages/s.mjs'], params: [], run(ctx) { write(ctx.root); } }]; }\n`,
    );
    const remote = path.join(dir, 'store');
    const key = 'a'.repeat(64);
    const spec = {
      stage: 's',
      key,
      code: codeFingerprint(repoAt(image), { name: 's', code: ['stages/s.mjs'] }),
      deps: [],
      params: {},
      inputs: {},
      shards: 1,
    };
    writeJobSpec(remote, key, spec);
    await runJob({
      remote,
      key,
      out: memoryOutput(),
      imageRoot: image,
      defaultPipeline: path.join(image, 'pipeline.mjs'),
      env: {},
    });
    const result = jobResultSchema.parse(
      JSON.parse(fs.readFileSync(path.join(remote, jobPaths.result(key)), 'utf8')),
    );

    // The same outputs committed by copy in a repository of their own.
    const local = path.join(dir, 'local');
    fs.mkdirSync(path.join(local, '.lockstep'), { recursive: true });
    new Function('fs', 'path', `return ${WRITE}`)(fs, path)(local);
    const expected = await commitArtifact(repoAt(local), 'out/s');
    expect(result.outs).toEqual([expected]);

    // Every object pushed loose (small files travel in packs) is a regular file whose bytes
    // hash to its name.
    const objects = path.join(remote, 'sha256');
    for (const sub of fs.readdirSync(objects)) {
      for (const name of fs.readdirSync(path.join(objects, sub))) {
        const file = path.join(objects, sub, name);
        expect(fs.lstatSync(file).isFile()).toBe(true);
        expect(createHash('sha256').update(fs.readFileSync(file)).digest('hex')).toBe(sub + name);
      }
    }
  });

  it('an absolute symlink out is copied: its object is a regular file, and the file it names is left as it was', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-worker-outs-'));
    const repo = repoAt(dir);
    fs.mkdirSync(path.join(dir, 'out'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'data.bin'), 'through a link\n', { mode: 0o644 });
    fs.symlinkSync(path.join(dir, 'data.bin'), path.join(dir, 'out/only'));
    const cache = new Cache(repo, { durable: false });
    const ref = await commitArtifact(repo, 'out/only', { cache, link: 'hardlink', linkFallback: true });
    const object = cache.objectPath(ref.hash);
    expect(fs.lstatSync(object).isFile()).toBe(true);
    expect(fs.readFileSync(object, 'utf8')).toBe('through a link\n');
    // Not the named file's inode: linking it would make a file outside the out read-only.
    expect(fs.lstatSync(object).ino).not.toBe(fs.statSync(path.join(dir, 'data.bin')).ino);
    expect(fs.statSync(path.join(dir, 'data.bin')).mode & 0o777).toBe(0o644);
    expect(fs.lstatSync(path.join(dir, 'out/only')).isSymbolicLink()).toBe(true);
  });
});
