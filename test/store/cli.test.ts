import { describe, expect, it, afterEach } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { resetWriteFaults } from '../../lib/store/fault.ts';
import { makeRepo, tempDir, writeFiles, writeTree, listObjects, git, rmrf, runStoreCli } from './helpers.ts';

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: string[] = [];
afterEach(() => {
  cleanup.splice(0).forEach(rmrf);
  delete process.env.LOCKSTEP_FAULT;
  delete process.env.LOCKSTEP_REMOTE;
  resetWriteFaults();
});

const run = runStoreCli;

function readTree(root: string): Record<string, string> {
  const result: Record<string, string> = {};
  const walk = (dir: string, prefix: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name), `${prefix}${e.name}/`);
      else result[prefix + e.name] = fs.readFileSync(path.join(dir, e.name), 'utf8');
    }
  };
  walk(root, '');
  return result;
}

describe('store commands', () => {
  it('add then push and pull round-trips data through a local remote into a fresh clone', async () => {
    const repo = makeRepo({ git: true });
    const remote = tempDir();
    const cloneParent = tempDir();
    cleanup.push(repo.root, remote, cloneParent);
    writeFiles(repo.root, 'data/raw', 30);
    writeTree(repo.root, { 'data/labels.csv': 'a,b\n1,2\n', 'notes.txt': 'hello' });
    const add = await run(repo.root, 'add', 'data', 'notes.txt');
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/^added data \(31 files, .*\n.*added notes\.txt/);
    expect(fs.readFileSync(path.join(repo.root, '.gitignore'), 'utf8')).toBe('/data\n/notes.txt\n');
    const lock = fs.readFileSync(repo.lockfilePath, 'utf8');
    expect(lock).toMatch(
      /data:\n {2}data:\n {4}hash: [0-9a-f]{64}\n {4}size: \d+\n {4}nfiles: 31\n {4}dir: true/,
    );
    expect(lock).toContain(`  notes.txt:\n    hash: ${sha('hello')}`);

    const push = await run(repo.root, 'push', '--remote', remote, '--json');
    expect(push.code, push.stderr).toBe(0);
    expect(JSON.parse(push.stdout)).toMatchObject({ transferred: 33, skipped: 0 });
    expect((await run(repo.root, 'push', '--remote', remote, '-j', '2', '--json')).stdout).toMatch(
      /"skipped": 33/,
    );

    git(repo.root, 'add', '-A');
    git(repo.root, 'commit', '-qm', 'track data');
    expect(git(repo.root, 'ls-files')).toBe('.gitignore\n.lockstep/.gitignore\nartifacts.lock.yaml\n');
    const clone = path.join(cloneParent, 'clone');
    git(cloneParent, 'clone', '-q', repo.root, clone);
    process.env.LOCKSTEP_REMOTE = remote;
    const pull = await run(clone, 'pull', '-j', '4');
    expect(pull.code, pull.stderr).toBe(0);
    expect(pull.stdout).toMatch(/pulled 33 objects/);
    expect(readTree(path.join(clone, 'data'))).toEqual(readTree(path.join(repo.root, 'data')));
    expect(fs.readFileSync(path.join(clone, 'notes.txt'), 'utf8')).toBe('hello');
    const again = await run(clone, 'pull', '--json');
    expect(JSON.parse(again.stdout)).toMatchObject({ transferred: 0, skipped: 33, checkedOut: [] });
  });

  it.each(['add', 'push', 'pull', 'gc'])('%s --help prints usage and exits 0', async (cmd) => {
    const dir = tempDir();
    cleanup.push(dir);
    const r = await run(dir, cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`Usage: lockstep ${cmd}`));
  });

  it('add warns when git also tracks the path', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    writeTree(repo.root, { 'data/a.txt': 'a' });
    git(repo.root, 'add', 'data');
    const r = await run(repo.root, 'add', 'data');
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^data: is also tracked by git "data"\. Run git rm -r --cached data/);
    writeTree(repo.root, { 'other/b.txt': 'b' });
    expect((await run(repo.root, 'add', 'other')).stderr).toBe('');
  });

  it('add of a path outside the repository exits 2 and changes nothing', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const r = await run(repo.root, 'add', '../elsewhere');
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(fs.existsSync(repo.lockfilePath)).toBe(false);
    expect(fs.existsSync(repo.cacheDir)).toBe(false);
  });

  it('add on a full disk exits 1 in one line and leaves cache and lockfile as they were', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    writeTree(repo.root, { 'old.txt': 'old' });
    expect((await run(repo.root, 'add', 'old.txt')).code).toBe(0);
    const lockBefore = fs.readFileSync(repo.lockfilePath, 'utf8');
    const objectsBefore = listObjects(repo.cacheDir);
    writeFiles(repo.root, 'data', 12);
    process.env.LOCKSTEP_FAULT = 'enospc-after:5';
    resetWriteFaults();
    const r = await run(repo.root, 'add', 'data');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lockstep: \.lockstep\/cache: no space left on device/);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(fs.readFileSync(repo.lockfilePath, 'utf8')).toBe(lockBefore);
    expect(listObjects(repo.cacheDir)).toEqual(objectsBefore);
    expect(fs.readdirSync(path.join(repo.cacheDir, 'tmp'))).toEqual([]);
    delete process.env.LOCKSTEP_FAULT;
    resetWriteFaults();
    expect((await run(repo.root, 'add', 'data')).code).toBe(0);
  });

  it("add clears the partial cache copies a killed add left behind, and no live writer's", async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    writeTree(repo.root, { 'a.txt': 'a' });
    const dead = Number(
      spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString(),
    );
    const tmp = path.join(repo.cacheDir, 'tmp');
    fs.mkdirSync(tmp, { recursive: true });
    // As Ctrl-C or a kill mid-copy leaves them: named by the writer's pid, as large as the file.
    const left = [`${dead}-0123456789abcdef`, `${dead}-probe-0123456789abcdef`];
    const live = `${process.pid}-fedcba9876543210`;
    for (const name of [...left, live, 'notes']) fs.writeFileSync(path.join(tmp, name), 'partial');
    expect((await run(repo.root, 'add', 'a.txt')).code).toBe(0);
    expect(fs.readdirSync(tmp).sort()).toEqual([live, 'notes'].sort());
  });

  it('push refuses a corrupt cache object: quarantined, not uploaded', async () => {
    const repo = makeRepo({ git: true });
    const remote = tempDir();
    cleanup.push(repo.root, remote);
    writeTree(repo.root, { 'a.txt': 'alpha' });
    expect((await run(repo.root, 'add', 'a.txt')).code).toBe(0);
    const obj = listObjects(repo.cacheDir)[0]![1];
    fs.chmodSync(obj, 0o644);
    fs.writeFileSync(obj, 'tampered');
    const r = await run(repo.root, 'push', '--remote', remote);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/corrupt \(quarantined\)/);
    expect(listObjects(remote)).toEqual([]);
    expect(fs.readdirSync(path.join(repo.stateDir, 'quarantine'))).toHaveLength(1);
  });

  it('pull refuses a corrupt remote object and a missing one, leaving the cache clean', async () => {
    const repo = makeRepo({ git: true });
    const remote = tempDir();
    cleanup.push(repo.root, remote);
    writeTree(repo.root, { 'a.txt': 'alpha' });
    expect((await run(repo.root, 'add', 'a.txt')).code).toBe(0);
    expect((await run(repo.root, 'push', '--remote', remote)).code).toBe(0);
    fs.rmSync(repo.cacheDir, { recursive: true });
    fs.rmSync(path.join(repo.root, 'a.txt'));
    const [, remoteObj] = listObjects(remote)[0]!;
    fs.chmodSync(remoteObj, 0o644);
    fs.writeFileSync(remoteObj, 'evil');
    const bad = await run(repo.root, 'pull', '--remote', remote);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/remote object does not match its sha256/);
    expect(listObjects(repo.cacheDir)).toEqual([]);
    expect(fs.existsSync(path.join(repo.root, 'a.txt'))).toBe(false);
    fs.rmSync(remoteObj);
    const missing = await run(repo.root, 'pull', '--remote', remote);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^lockstep: a\.txt: 1 object\(s\) missing on the remote/);
  });

  it('push without any remote configured is a one-line config error', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    const r = await run(repo.root, 'push');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no remote configured/);
  });
});

describe('add and .gitignore', () => {
  it('ignores exactly a path whose name holds glob characters or trailing spaces, nothing beside it', async () => {
    const repo = makeRepo({ git: true });
    cleanup.push(repo.root);
    writeTree(repo.root, { 'e/[ab]*': 'x', 'e/a': 'keep', 'e/tail ': 'y', 'e/tail': 'keep too' });
    const r = await runStoreCli(repo.root, 'add', 'e/[ab]*', 'e/tail ');
    expect(r.code, r.stderr).toBe(0);
    const untracked = git(repo.root, 'status', '--porcelain', '-uall', '--', 'e');
    expect(untracked.split('\n').filter(Boolean).sort()).toEqual(['?? e/a', '?? e/tail']);
  });
});
