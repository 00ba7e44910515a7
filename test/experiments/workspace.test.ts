/**
 * The experiment's worktree set-up (lib/experiments/workspace.ts): it shares the cache and
 * run-cache, gets the workspace's configuration, and runs with an environment whose relative
 * paths still point where the caller meant.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  experimentEnv,
  parseComputeOverride,
  prepareExperimentWorkspace,
} from '../../lib/experiments/workspace.ts';
import { repoAt } from '../../lib/repo.ts';

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ws-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('experiment workspace', () => {
  it('experiment workspace replaces a .lockstep the base commit holds as a symlink instead of writing through it', async () => {
    const repo = repoAt(tmp());
    const wt = repoAt(tmp());
    fs.mkdirSync(repo.stateDir, { recursive: true });
    fs.writeFileSync(repo.configPath, 'remote: here\n');
    // A committed symlink (here absolute, to the workspace's own state) checked out in the worktree.
    fs.symlinkSync(repo.stateDir, wt.stateDir, 'dir');
    await prepareExperimentWorkspace(repo, wt);
    expect(fs.lstatSync(wt.stateDir).isDirectory()).toBe(true);
    expect(fs.readFileSync(wt.configPath, 'utf8')).toBe('remote: here\n');
    expect(fs.realpathSync(wt.cacheDir)).toBe(fs.realpathSync(repo.cacheDir));
    // The workspace's state has no link into itself.
    expect(fs.lstatSync(repo.cacheDir).isSymbolicLink()).toBe(false);
    expect(fs.lstatSync(path.join(repo.stateDir, 'runs')).isSymbolicLink()).toBe(false);
  });

  it('experiment workspace shares cache and run-cache and gets the workspace config files that exist', async () => {
    const repo = repoAt(tmp());
    const wt = repoAt(tmp());
    fs.mkdirSync(repo.stateDir, { recursive: true });
    fs.writeFileSync(repo.configPath, 'compute:\n  stages:\n    train: { backend: vertex }\n');
    // The worktree's committed copy (from the base commit) is replaced by the workspace's.
    fs.mkdirSync(wt.stateDir, { recursive: true });
    fs.writeFileSync(wt.configPath, 'remote: old\n');
    await prepareExperimentWorkspace(repo, wt);
    expect(fs.readFileSync(wt.configPath, 'utf8')).toContain('backend: vertex');
    expect(fs.existsSync(path.join(wt.stateDir, 'config.local.yaml'))).toBe(false);
    expect(fs.realpathSync(wt.cacheDir)).toBe(fs.realpathSync(repo.cacheDir));
    expect(fs.realpathSync(path.join(wt.stateDir, 'runs'))).toBe(
      fs.realpathSync(path.join(repo.stateDir, 'runs')),
    );
  });

  it.each([
    [{ LOCKSTEP_REMOTE: 'store' }, '/repo/store', undefined],
    [{ LOCKSTEP_REMOTE: 'gs://b/p' }, 'gs://b/p', undefined],
    [{ LOCKSTEP_REMOTE: '/abs/store' }, '/abs/store', undefined],
    [{ GOOGLE_APPLICATION_CREDENTIALS: 'creds/key.json' }, undefined, '/caller/creds/key.json'],
    [{ GOOGLE_APPLICATION_CREDENTIALS: '/etc/key.json' }, undefined, '/etc/key.json'],
  ])(
    'experiment workspace env %j keeps remote and credentials pointing where the caller meant',
    (env, remote, creds) => {
      const repo = repoAt('/repo');
      const out = experimentEnv(repo, { CI: 'true' }, env, '/caller');
      expect(out.CI).toBe('true');
      expect(out.LOCKSTEP_REMOTE).toBe(remote);
      expect(out.GOOGLE_APPLICATION_CREDENTIALS).toBe(creds);
    },
  );

  it('experiment workspace --compute accepts local and vertex and names the flag otherwise', () => {
    expect(parseComputeOverride('local')).toBe('local');
    expect(parseComputeOverride('vertex')).toBe('vertex');
    expect(parseComputeOverride(undefined)).toBeUndefined();
    expect(() => parseComputeOverride('gpu')).toThrow(
      /^--compute: unknown backend "gpu"\. Use --compute local/,
    );
  });
});
