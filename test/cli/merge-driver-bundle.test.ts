/**
 * The merge driver's bundle (bin/lockstep-merge-driver.mjs) is rebuilt whenever a source it was
 * built from changed, including an edit that kept the size and put the mtime back. Runs on a copy
 * of the package whose node_modules links each package, so its bundle cache is its own.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');

describe('merge driver bundle', () => {
  let pkg: string;
  beforeAll(() => {
    pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-driver-bundle-'));
    for (const dir of ['bin', 'lib'])
      fs.cpSync(path.join(ROOT, dir), path.join(pkg, dir), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
    const modules = path.join(pkg, 'node_modules');
    fs.mkdirSync(modules);
    for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
      if (name === '.cache') continue;
      fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
    }
  });
  afterAll(() => fs.rmSync(pkg, { recursive: true, force: true }));

  const bundle = () => path.join(pkg, 'node_modules/.cache/lockstep/merge-driver.mjs');
  const prepare = () => run(process.execPath, [path.join(pkg, 'bin/lockstep-merge-driver.mjs'), '--prepare']);

  it('an edit that keeps the size and puts the mtime back rebuilds the bundle', async () => {
    const source = path.join(pkg, 'lib/lockfile-driver.ts');
    // A whole-second mtime, so utimes puts back exactly what the build recorded.
    const mtime = 1_700_000_000;
    fs.utimesSync(source, mtime, mtime);
    await prepare();
    const has = (text: string) => fs.readFileSync(bundle(), 'utf8').includes(text);
    expect(has('expected the arguments %O %A %B [%P]')).toBe(true);
    // Untouched: --prepare keeps the bundle it has.
    const built = fs.statSync(bundle()).mtimeMs;
    await prepare();
    expect(fs.statSync(bundle()).mtimeMs).toBe(built);

    const text = fs.readFileSync(source, 'utf8');
    fs.writeFileSync(source, text.replace('expected the arguments %O', 'expected the argument, %O'));
    fs.utimesSync(source, mtime, mtime);
    expect(fs.statSync(source)).toMatchObject({ size: Buffer.byteLength(text), mtimeMs: mtime * 1000 });
    await prepare();
    expect(has('expected the argument, %O %A %B [%P]')).toBe(true);
  });
});
