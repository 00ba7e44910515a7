/**
 * `registry show --history` and `registry list` with a lockfile cache written before the
 * history changed underneath it (`git branch -f`, `git replace`): never a stale answer.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listRegistry, showRegistry } from '../../lib/registry/registry.ts';
import { buildModelHistory, type ModelHistory } from '../support/model-history.ts';

let dir: string;
let h: ModelHistory;

function git(...args: string[]): string {
  return execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
}

const cacheFile = () => path.join(dir, '.lockstep', 'lockfile-cache.json');

/** Where each dev model is and was deployed, as `show --history` says. */
async function everywhere(): Promise<string[][]> {
  const out: string[][] = [];
  for (const c of h.dev) {
    const e = await showRegistry(dir, c, { history: true });
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

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-show-stale-'));
  h = buildModelHistory(dir, { commits: 8, stagingEvery: 2, prodEvery: 2 });
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('a lockfile cache from before the history changed', () => {
  it('git branch -f: show --history and list answer as without the cache', async () => {
    await everywhere();
    await listRegistry(dir);
    expect(fs.existsSync(cacheFile())).toBe(true);
    git('branch', '-f', 'staging', h.dev[5]!);
    const warm = await everywhere();
    expect(warm).toEqual(await fresh(everywhere));
    expect(warm[5]).toContain('staging:current');
  });

  it('git replace of an environment head: show --history and list answer as without the cache', async () => {
    await everywhere();
    const listed = (await listRegistry(dir)).map((e) => e.environments);
    const head = git('rev-parse', 'staging');
    // staging's head now reads as dev commit 6: its first-parent history is dev's.
    git('replace', head, h.dev[6]!);
    const warm = await everywhere();
    expect(warm).toEqual(await fresh(everywhere));
    expect(warm[1]).toContain('staging:past');
    const relisted = (await listRegistry(dir)).map((e) => e.environments);
    expect(relisted).toEqual(await fresh(async () => (await listRegistry(dir)).map((e) => e.environments)));
    expect(relisted).not.toEqual(listed);
  });

  it('git replace of a lockfile blob: the cached summary of that blob is not served', async () => {
    await everywhere();
    const blob = git('rev-parse', `${h.dev[7]!}:artifacts.lock.yaml`);
    git('replace', blob, git('rev-parse', `${h.dev[2]!}:artifacts.lock.yaml`));
    const warm = (await listRegistry(dir)).map((e) => e.model.hash);
    expect(warm).toEqual(await fresh(async () => (await listRegistry(dir)).map((e) => e.model.hash)));
  });
});
