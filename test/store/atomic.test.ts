import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sweepTempFiles, tempPathFor, writeFileAtomic } from '../../lib/atomic.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-atomic-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('atomic writes', () => {
  it('writeFileAtomic with tmpDir writes the file and leaves nothing in either directory', async () => {
    const tmpDir = path.join(dir, '.lockstep', 'tmp');
    const file = path.join(dir, 'artifacts.lock.yaml');
    await writeFileAtomic(file, 'one\n', { tmpDir });
    await writeFileAtomic(file, 'two\n', { tmpDir });
    expect(fs.readFileSync(file, 'utf8')).toBe('two\n');
    expect(fs.readdirSync(dir).sort()).toEqual(['.lockstep', 'artifacts.lock.yaml']);
    expect(fs.readdirSync(tmpDir)).toEqual([]);
  });

  it('writeFileAtomic falls back to the target directory when tmpDir is on another filesystem', async () => {
    const shm = '/dev/shm';
    const other = fs.existsSync(shm) && fs.statSync(shm).dev !== fs.statSync(dir).dev;
    // Without a second filesystem the fallback cannot be provoked; the plain write still must work.
    const tmpDir = other ? fs.mkdtempSync(path.join(shm, 'lockstep-atomic-')) : path.join(dir, 't');
    try {
      const file = path.join(dir, 'params.yaml');
      await writeFileAtomic(file, 'a: 1\n', { tmpDir });
      expect(fs.readFileSync(file, 'utf8')).toBe('a: 1\n');
      expect(fs.readdirSync(tmpDir)).toEqual([]);
      expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    } finally {
      if (other) fs.rmSync(tmpDir, { recursive: true, force: true });
    }
  });

  it('sweepTempFiles removes temp files of dead writers only', () => {
    const dead = deadPid();
    const mine = tempPathFor(path.join(dir, 'artifacts.lock.yaml'), dir);
    const theirs = path.join(dir, `.artifacts.lock.yaml.${dead}.0123456789ab.tmp`);
    const unrelated = path.join(dir, 'notes.tmp');
    for (const f of [mine, theirs, unrelated]) fs.writeFileSync(f, 'x');
    expect(path.basename(mine)).toContain(`.${process.pid}.`);
    expect(sweepTempFiles(dir)).toBe(1);
    expect(fs.readdirSync(dir).sort()).toEqual([path.basename(mine), 'notes.tmp'].sort());
    expect(sweepTempFiles(path.join(dir, 'missing'))).toBe(0);
  });
});
