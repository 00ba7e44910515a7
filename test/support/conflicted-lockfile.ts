/**
 * A repository in the middle of a merge whose only conflict is artifacts.lock.yaml: `main` and
 * `other` each changed the train stage's code fingerprint, and `git merge other` stopped.
 */
import { spawnSync } from 'node:child_process';
import { expect } from 'vitest';
import { serializeLockfile } from '../../lib/lockfile.ts';
import { createTmpRepo, type TmpRepo } from './tmp-repo.ts';

export function conflictedLockfileRepo(): Promise<TmpRepo> {
  const lockfile = (c: string) =>
    serializeLockfile({
      schema: 1,
      data: {},
      stages: { train: { code: c.repeat(64), deps: [], params: {}, outs: [] } },
    });
  return createTmpRepo({ 'artifacts.lock.yaml': lockfile('a') }).then((repo) => {
    repo.git('checkout', '-q', '-b', 'other');
    repo.write('artifacts.lock.yaml', lockfile('b'));
    repo.commit('other');
    repo.git('checkout', '-q', 'main');
    repo.write('artifacts.lock.yaml', lockfile('c'));
    repo.commit('main');
    expect(spawnSync('git', ['merge', '-q', 'other'], { cwd: repo.root }).status).not.toBe(0);
    return repo;
  });
}
