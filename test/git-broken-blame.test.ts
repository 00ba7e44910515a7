/**
 * A broken git on PATH (exits 127 saying nothing, or never answers `--version`) while a command
 * fails for a reason of its own: the command's own error, and its exit code, are what the user
 * sees, and the CLI does not wait forever on the git check.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createTmpRepo, type TmpRepo } from './support/tmp-repo.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/lockstep.mjs');
const REAL_GIT = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim();

let t: TmpRepo | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function pathWithGit(script: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-stubgit-'));
  dirs.push(dir);
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  fs.writeFileSync(path.join(dir, 'git'), `#!/bin/sh\n${script}\nexec ${REAL_GIT} "$@"\n`, { mode: 0o755 });
  return dir;
}

function lockstep(root: string, args: string[], bin: string, timeout = 60_000) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:/usr/bin:/bin`, CI: 'true' },
    timeout,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stderr: r.stderr.trim(), ms: Date.now() - started };
}

describe('a command that fails on its own while the git on PATH is broken', () => {
  it('add (which needs no git) of a path through a file says ENOTDIR, not that git is broken', async () => {
    t = await createTmpRepo({ 'f.txt': 'hi\n' });
    const good = lockstep(t.root, ['add', 'f.txt/x'], pathWithGit(''));
    const broken = lockstep(t.root, ['add', 'f.txt/x'], pathWithGit('exit 127'));
    expect(good.stderr).toMatch(/ENOTDIR/);
    expect({ stderr: broken.stderr, status: broken.status }).toEqual({
      stderr: good.stderr,
      status: good.status,
    });
  }, 60_000);

  it('add .git is a usage error (exit 2) whatever git is on PATH', async () => {
    t = await createTmpRepo({ 'f.txt': 'hi\n' });
    const good = lockstep(t.root, ['add', '.git'], pathWithGit(''));
    const broken = lockstep(t.root, ['add', '.git'], pathWithGit('exit 127'));
    expect(good.status).toBe(2);
    expect({ stderr: broken.stderr, status: broken.status }).toEqual({
      stderr: good.stderr,
      status: good.status,
    });
  }, 60_000);

  it('add of a missing file in a repository kept under ~/git/ names the file', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-githome-'));
    dirs.push(parent);
    fs.mkdirSync(path.join(parent, 'git', 'proj'), { recursive: true });
    t = await createTmpRepo({ 'f.txt': 'hi\n' });
    const root = path.join(parent, 'git', 'proj');
    fs.cpSync(t.root, root, { recursive: true });
    const missing = path.join(root, 'data', 'missing.bin');
    const good = lockstep(root, ['-C', root, 'add', missing], pathWithGit(''));
    const broken = lockstep(root, ['-C', root, 'add', missing], pathWithGit('exit 127'));
    expect(good.status).not.toBe(0);
    expect({ stderr: broken.stderr, status: broken.status }).toEqual({
      stderr: good.stderr,
      status: good.status,
    });
  }, 60_000);

  it('a git that never answers --version does not hold the failed command open', async () => {
    t = await createTmpRepo({ 'params.yaml': 'train:\n  lr: 0.1\n' });
    const hang = pathWithGit('if [ "$1" = --version ]; then exec sleep 600; fi');
    const r = lockstep(t.root, ['params', 'diff', 'no-such-rev'], hang, 30_000);
    expect(r.status, `exited after ${r.ms} ms`).toBe(1);
    expect(r.stderr).toMatch(/no-such-rev/);
    expect(r.ms).toBeLessThan(15_000);
  }, 60_000);
});
