/**
 * `registry show --history` and `registry list` with a lockfile cache written before the
 * history changed underneath it (`git branch -f`, `git replace`): never a stale answer.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { listRegistry, showRegistry } from '../../lib/registry/registry.ts';
import { useModelHistory } from '../support/model-history-repo.ts';

const repo = useModelHistory('lockstep-show-stale-', { commits: 8, stagingEvery: 2, prodEvery: 2 });
const { git } = repo;

const cacheFile = () => path.join(repo.dir, '.lockstep', 'lockfile-cache.json');

/** Where each dev model is and was deployed, as `show --history` says. */
async function everywhere(): Promise<string[][]> {
  const out: string[][] = [];
  for (const c of repo.history.dev) {
    const e = await showRegistry(repo.dir, c, { history: true });
    out.push(e.environments.map((p) => `${p.env}:${p.state}`));
  }
  return out;
}

/** The same answers computed with no cache file at all. */
async function fresh<T>(fn: () => Promise<T>): Promise<T> {
  const saved = fs.existsSync(cacheFile()) ? fs.readFileSync(cacheFile()) : undefined;
  fs.rmSync(cacheFile(), { force: true });
  try {
    return await fn();
  } finally {
    if (saved) fs.writeFileSync(cacheFile(), saved);
  }
}

describe('a lockfile cache from before the history changed', () => {
  it('git branch -f: show --history and list answer as without the cache', async () => {
    await everywhere();
    await listRegistry(repo.dir);
    expect(fs.existsSync(cacheFile())).toBe(true);
    git('branch', '-f', 'staging', repo.history.dev[5]!);
    const warm = await everywhere();
    expect(warm).toEqual(await fresh(everywhere));
    expect(warm[5]).toContain('staging:current');
  });

  it('git replace of an environment head: show --history and list answer as without the cache', async () => {
    await everywhere();
    const listed = (await listRegistry(repo.dir)).map((e) => e.environments);
    const head = git('rev-parse', 'staging');
    // staging's head now reads as dev commit 6: its first-parent history is dev's.
    git('replace', head, repo.history.dev[6]!);
    const warm = await everywhere();
    expect(warm).toEqual(await fresh(everywhere));
    expect(warm[1]).toContain('staging:past');
    const relisted = (await listRegistry(repo.dir)).map((e) => e.environments);
    expect(relisted).toEqual(
      await fresh(async () => (await listRegistry(repo.dir)).map((e) => e.environments)),
    );
    expect(relisted).not.toEqual(listed);
  });

  it('git replace of a lockfile blob: the cached summary of that blob is not served', async () => {
    await everywhere();
    const blob = git('rev-parse', `${repo.history.dev[7]!}:artifacts.lock.yaml`);
    git('replace', blob, git('rev-parse', `${repo.history.dev[2]!}:artifacts.lock.yaml`));
    const warm = (await listRegistry(repo.dir)).map((e) => e.model.hash);
    expect(warm).toEqual(await fresh(async () => (await listRegistry(repo.dir)).map((e) => e.model.hash)));
  });
});
