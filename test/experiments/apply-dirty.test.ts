import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseLockfile } from '../../lib/lockfile.ts';
import { lockfileArtifacts } from '../../lib/store/artifacts.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { cliIn, createExperimentRepo, PIPE, showAt } from './helpers.ts';

let t: TmpRepo;
const cli = (...args: string[]) => cliIn(t.root, ...args);

beforeEach(async () => {
  t = await createExperimentRepo('data:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\n');
  const r = await cli('exp', 'run', '-S', 'train.lr=0.02', '--name', 'lr-02', ...PIPE);
  expect(r.code, r.err).toBe(0);
});

afterEach(async () => {
  await t.cleanup();
});

/** A path the experiment pins differently from the workspace, and a file in it to edit. */
function replacedPath(): { rel: string; file: string } {
  const mine = new Map(
    lockfileArtifacts(parseLockfile(t.read('artifacts.lock.yaml'))).map((r) => [r.path, r]),
  );
  const theirs = lockfileArtifacts(parseLockfile(showAt(t.root, 'refs/exps/lr-02:artifacts.lock.yaml')));
  const ref = theirs.find((r) => mine.get(r.path)?.hash !== r.hash)!;
  expect(ref).toBeDefined();
  const abs = path.join(t.root, ref.path);
  const file = fs.statSync(abs).isDirectory()
    ? path.join(
        abs,
        fs.readdirSync(abs, { recursive: true, withFileTypes: true }).find((d) => d.isFile())!.name,
      )
    : abs;
  return { rel: ref.path, file };
}

describe('exp apply over unrecorded workspace changes', () => {
  it('refuses to overwrite an output edited by hand and recorded nowhere, changes nothing; --force overwrites', async () => {
    const { rel, file } = replacedPath();
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, 'hand-made, never recorded\n');
    const params = t.read('params.yaml');
    const lock = t.read('artifacts.lock.yaml');

    const r = await cli('exp', 'apply', 'lr-02');
    expect(r.code).toBe(1);
    const line = r.err.trim().split('\n').pop()!;
    expect(line).toContain(`exp apply lr-02: the workspace holds changes to ${rel}`);
    expect(line).toContain('--force; nothing was changed.');
    expect(t.read('params.yaml')).toBe(params);
    expect(t.read('artifacts.lock.yaml')).toBe(lock);
    expect(fs.readFileSync(file, 'utf8')).toBe('hand-made, never recorded\n');

    const forced = await cli('exp', 'apply', 'lr-02', '--force');
    expect(forced.code, forced.err).toBe(0);
    expect(t.read('artifacts.lock.yaml')).toBe(showAt(t.root, 'refs/exps/lr-02:artifacts.lock.yaml'));
    const status = JSON.parse((await cli('status', ...PIPE, '--json')).out);
    expect(status.missingLocal).toEqual([]);
  });

  it('outputs that are only what the workspace lockfile pins are replaced without --force; applying twice is a no-op', async () => {
    const first = await cli('exp', 'apply', 'lr-02');
    expect(first.code, first.err).toBe(0);
    const again = await cli('exp', 'apply', 'lr-02');
    expect(again.code, again.err).toBe(0);
    expect(again.out).toBe('applied lr-02: params and lockfile already match; restored 0 outputs');
  });

  it('an experiment whose commit has no lockfile applies its params and says no outputs are pinned', async () => {
    const index = path.join(t.root, '.git', 'index.unpinned');
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: t.root,
        encoding: 'utf8',
        input: '',
        env: { ...process.env, GIT_INDEX_FILE: index },
      }).trim();
    // The experiment's commit without its lockfile: a run that ended before writing one.
    git('read-tree', 'refs/exps/lr-02');
    git('update-index', '--force-remove', 'artifacts.lock.yaml');
    const tree = git('write-tree');
    const message = git('log', '-1', '--format=%B', 'refs/exps/lr-02');
    const parent = git('rev-parse', 'refs/exps/lr-02^');
    const commit = execFileSync('git', ['commit-tree', tree, '-p', parent, '-F', '-'], {
      cwd: t.root,
      encoding: 'utf8',
      input: message,
    }).trim();
    git('update-ref', 'refs/exps/unpinned', commit);
    const lock = t.read('artifacts.lock.yaml');

    const r = await cli('exp', 'apply', 'unpinned');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('applied unpinned: wrote params.yaml');
    expect(r.out).toContain(`its commit ${commit.slice(0, 8)} has no artifacts.lock.yaml`);
    expect(r.out).not.toContain('lockfile already match');
    expect(t.read('params.yaml')).toContain('lr: 0.02');
    expect(t.read('artifacts.lock.yaml')).toBe(lock);
    const json = JSON.parse((await cli('exp', 'apply', 'unpinned', '--json')).out);
    expect(json.lockfile).toBe(false);
  });

  it('an experiment whose artifacts are in neither the cache nor a remote is refused in one line, nothing changed', async () => {
    const { rel, file } = replacedPath();
    const before = fs.readFileSync(file);
    const params = t.read('params.yaml');
    const lock = t.read('artifacts.lock.yaml');
    fs.rmSync(path.join(t.root, '.lockstep', 'cache'), { recursive: true, force: true });
    const r = await cli('exp', 'apply', 'lr-02');
    expect(r.code).toBe(1);
    const line = r.err.trim().split('\n').pop()!;
    expect(line).toMatch(/^lockstep: exp apply lr-02: .*nothing was changed\.$/);
    expect(line).toContain(rel);
    expect(t.read('params.yaml')).toBe(params);
    expect(t.read('artifacts.lock.yaml')).toBe(lock);
    expect(fs.readFileSync(file)).toEqual(before);
  });
});
