/**
 * `registry get` of a model whose objects are in neither the cache nor a remote: one line, and
 * nothing created at or above the destination.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { serializeLockfile } from '../../lib/lockfile.ts';
import { memoryOutput } from '../../lib/output.ts';
import { buildModelHistory, syntheticLockfile } from '../support/model-history.ts';

let dir: string;

function git(...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-get-missing-'));
  buildModelHistory(dir, { commits: 2 });
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('registry get with the model missing everywhere', () => {
  for (const dirModel of [true, false]) {
    it(`fails in one line and creates nothing (${dirModel ? 'directory' : 'file'} model)`, async () => {
      if (!dirModel) {
        const lock = syntheticLockfile(7);
        for (const stage of Object.values(lock.stages))
          stage.outs = stage.outs.map(({ dir: _dir, ...o }) => ({ ...o, nfiles: 1 }));
        fs.writeFileSync(path.join(dir, 'artifacts.lock.yaml'), serializeLockfile(lock));
        git('commit', '-qam', 'a file model');
      }
      const r = await cli('registry', 'get', 'HEAD', '--out', 'new/deep/model');
      expect(r.code).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/missing/);
      expect(fs.existsSync(path.join(dir, 'new'))).toBe(false);
      expect(git('status', '--porcelain', '--untracked-files=all')).not.toMatch(/new\//);
    });
  }
});
