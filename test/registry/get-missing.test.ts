/**
 * `registry get` of a model whose objects are in neither the cache nor a remote: one line, and
 * nothing created at or above the destination.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { serializeLockfile } from '../../lib/lockfile.ts';
import { syntheticLockfile } from '../support/model-history.ts';
import { useModelHistory } from '../support/model-history-repo.ts';

const repo = useModelHistory('lockstep-get-missing-', { commits: 2 });
const { git, cli } = repo;

describe('registry get with the model missing everywhere', () => {
  for (const dirModel of [true, false]) {
    it(`fails in one line and creates nothing (${dirModel ? 'directory' : 'file'} model)`, async () => {
      if (!dirModel) {
        const lock = syntheticLockfile(7);
        for (const stage of Object.values(lock.stages))
          stage.outs = stage.outs.map(({ dir: _dir, ...o }) => ({ ...o, nfiles: 1 }));
        fs.writeFileSync(path.join(repo.dir, 'artifacts.lock.yaml'), serializeLockfile(lock));
        git('commit', '-qam', 'a file model');
      }
      const r = await cli('registry', 'get', 'HEAD', '--out', 'new/deep/model');
      expect(r.code).toBe(1);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/missing/);
      expect(fs.existsSync(path.join(repo.dir, 'new'))).toBe(false);
      expect(git('status', '--porcelain', '--untracked-files=all')).not.toMatch(/new\//);
    });
  }
});
