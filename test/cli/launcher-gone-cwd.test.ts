/**
 * Run from a directory deleted under the shell, but with `-C <absolute dir>`: the directory the
 * command runs in does not depend on the lost one, so the command runs there.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function fromGoneCwd(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const gone = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-gone-'));
  return new Promise((resolve) => {
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        'cd "$1" && rmdir "$1" && shift && exec "$@"',
        'sh',
        gone,
        process.execPath,
        path.join(ROOT, 'bin/lockstep.mjs'),
        ...args,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (c) => resolve({ code: c, stderr: err }));
  });
}

describe('launcher from a deleted cwd with -C', () => {
  for (const form of ['-C', '--cwd=']) {
    it(`${form} <absolute dir> runs the command there`, async () => {
      const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-gone-repo-'));
      dirs.push(repo);
      execFileSync('git', ['init', '-q', repo]);
      fs.writeFileSync(path.join(repo, 'notes.txt'), 'hello');
      const args = form === '-C' ? ['-C', repo, 'add', 'notes.txt'] : [`--cwd=${repo}`, 'add', 'notes.txt'];
      const { code, stderr } = await fromGoneCwd(args);
      expect(stderr).not.toMatch(/current directory no longer exists/);
      expect(code, stderr).toBe(0);
      expect(fs.readFileSync(path.join(repo, 'artifacts.lock.yaml'), 'utf8')).toContain('notes.txt');
    });
  }

  it('-C <relative dir> still fails in one line', async () => {
    const { code, stderr } = await fromGoneCwd(['-C', 'somewhere', 'status']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^lockstep: the current directory no longer exists.*\n$/);
  });
});
