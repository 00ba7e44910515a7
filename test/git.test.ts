import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { spawnSync } from 'node:child_process';
import { GIT_NOT_FOUND, GitNotFoundError } from '../lib/errors.ts';
import {
  currentBranch,
  currentCommit,
  gitRaw,
  resolveRev,
  revParse,
  isDirty,
  listRefs,
  readFileAtRev,
  recentCommits,
} from '../lib/git.ts';
import { createTmpRepo, type TmpRepo } from './support/tmp-repo.ts';
import { cliIn, createExperimentRepo, PIPE } from './experiments/helpers.ts';
import { conflictedLockfileRepo } from './support/conflicted-lockfile.ts';
import { GOOD, makeRegistryRepo } from './promotion/fixture.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

describe('git', () => {
  it('git readFileAtRev reads blobs at a revision without a checkout', async () => {
    t = await createTmpRepo({ 'a/b.txt': 'one\n' });
    const c1 = t.git('rev-parse', 'HEAD');
    t.write('a/b.txt', 'two\n');
    t.commit('two');
    t.write('a/b.txt', 'three\n');
    expect(await readFileAtRev(t.root, c1, 'a/b.txt')).toBe('one\n');
    expect(await readFileAtRev(t.root, 'HEAD', 'a/b.txt')).toBe('two\n');
    expect(await readFileAtRev(t.root, 'HEAD', 'missing.txt')).toBeUndefined();
    expect(t.read('a/b.txt')).toBe('three\n');
    await expect(readFileAtRev(t.root, 'nope', 'a/b.txt')).rejects.toThrow(/unknown revision "nope"/);
  });

  it('git listRefs lists branches and tags with peeled commits', async () => {
    t = await createTmpRepo();
    const c1 = t.git('rev-parse', 'HEAD');
    t.git('tag', '-a', 'v1', '-m', 'release');
    t.git('branch', 'staging');
    const c2 = t.commit('second');
    const refs = await listRefs(t.root);
    expect(refs).toEqual([
      { name: 'main', kind: 'branch', ref: 'refs/heads/main', commit: c2 },
      { name: 'staging', kind: 'branch', ref: 'refs/heads/staging', commit: c1 },
      { name: 'v1', kind: 'tag', ref: 'refs/tags/v1', commit: c1 },
    ]);
  });

  it('git recentCommits, currentCommit, currentBranch and isDirty describe the repository', async () => {
    t = await createTmpRepo({}, { commit: false });
    expect(await currentCommit(t.root)).toBeUndefined();
    expect(await recentCommits(t.root, 5)).toEqual([]);
    const c1 = t.commit('first');
    const c2 = t.commit('second subject');
    const commits = await recentCommits(t.root, 5);
    expect(commits.map((c) => c.commit)).toEqual([c2, c1]);
    expect(commits[0]!.subject).toBe('second subject');
    expect(commits[0]!.author).toBe('Test');
    expect(await recentCommits(t.root, 1)).toHaveLength(1);
    expect(await currentCommit(t.root)).toBe(c2);
    expect(await currentBranch(t.root)).toBe('main');
    expect(await isDirty(t.root)).toBe(false);
    t.write('new.txt', 'x');
    expect(await isDirty(t.root)).toBe(true);
  });

  it('a git killed by a signal fails the read instead of answering with what it printed so far', async () => {
    t = await createTmpRepo({ 'a.txt': 'a\n' });
    // A git that prints one ref of a longer list and dies (as under the OOM killer).
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-git-'));
    fs.writeFileSync(
      path.join(bin, 'git'),
      "#!/bin/sh\nprintf 'refs/heads/a\\t%040d\\t\\n' 0\nkill -9 $$\n",
      {
        mode: 0o755,
      },
    );
    const saved = process.env.PATH;
    process.env.PATH = `${bin}${path.delimiter}${saved ?? ''}`;
    try {
      await expect(listRefs(t.root)).rejects.toThrow(
        /^git for-each-ref: killed by SIGKILL before it finished/,
      );
    } finally {
      process.env.PATH = saved;
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  it('gitRaw answers and fails where simple-git raw does, with the same message', async () => {
    t = await createTmpRepo({ 'a.txt': 'a\n' });
    const cases = [
      ['rev-parse', 'HEAD'],
      // Exits 1 and prints nothing: an empty answer, not a failure.
      ['rev-parse', '--verify', '--quiet', 'nope^{commit}'],
      // Exits 128 with `fatal:` on stderr.
      ['rev-parse', '--verify', 'nope^{commit}'],
      ['cat-file', '-p', 'HEAD:missing.txt'],
      ['for-each-ref', '--format=%(refname)', 'refs/heads'],
    ];
    for (const args of cases) {
      const ours = await gitRaw(t.root, args).then(
        (out) => ({ out }),
        (err: Error) => ({ err: err.message }),
      );
      const theirs = await simpleGit({ baseDir: t.root, trimmed: false })
        .raw(args)
        .then(
          (out) => ({ out }),
          (err: Error) => ({ err: err.message }),
        );
      expect(ours, args.join(' ')).toEqual(theirs);
    }
  });
});

describe('git not on PATH', () => {
  /** Runs `fn` with PATH naming only an empty directory, so no `git` can be found. */
  async function withoutGit<T>(fn: () => Promise<T>): Promise<T> {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-nogit-'));
    const saved = process.env.PATH;
    process.env.PATH = empty;
    try {
      return await fn();
    } finally {
      process.env.PATH = saved;
      fs.rmSync(empty, { recursive: true, force: true });
    }
  }

  it('says git is missing and how to install it, instead of spawn ENOENT or an unknown revision', async () => {
    t = await createTmpRepo({ 'a.txt': 'one\n' });
    const root = t.root;
    await withoutGit(async () => {
      await expect(gitRaw(root, ['rev-parse', 'HEAD'])).rejects.toBeInstanceOf(GitNotFoundError);
      await expect(revParse(root, 'HEAD')).rejects.toThrow(GIT_NOT_FOUND);
      await expect(resolveRev(root, 'HEAD')).rejects.toThrow(GIT_NOT_FOUND);
      await expect(readFileAtRev(root, 'HEAD', 'a.txt')).rejects.toThrow(GIT_NOT_FOUND);
      // A directory that is gone is still said as such, not as a missing git.
      await expect(gitRaw(path.join(root, 'gone'), ['status'])).rejects.toThrow(/directory does not exist/);
    });
  });

  it('every command that needs git prints the one line and fails', async () => {
    t = await createTmpRepo({ 'a.txt': 'one\n' });
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-nogit-'));
    try {
      for (const args of [
        ['exp', 'show'],
        ['registry', 'list'],
        ['params', 'diff'],
      ]) {
        const r = spawnSync(
          process.execPath,
          [path.resolve(import.meta.dirname, '../bin/lockstep.mjs'), ...args],
          {
            cwd: t.root,
            encoding: 'utf8',
            env: { ...process.env, PATH: empty, CI: 'true' },
          },
        );
        expect(r.stderr.trim(), args.join(' ')).toBe(`lockstep: ${GIT_NOT_FOUND}`);
        expect(r.status, args.join(' ')).toBe(1);
      }
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});

/**
 * Runs the CLI as a user would, in `root`, with a PATH that finds node but no git (a directory
 * holding a link to this node).
 */
function lockstepWithoutGit(root: string, args: string[], env: Record<string, string> = {}) {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-nogit-'));
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  try {
    const r = spawnSync(
      process.execPath,
      [path.resolve(import.meta.dirname, '../bin/lockstep.mjs'), ...args],
      {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, PATH: bin, CI: 'true', ...env },
      },
    );
    return { status: r.status, stderr: r.stderr.trim(), stdout: r.stdout.trim() };
  } finally {
    fs.rmSync(bin, { recursive: true, force: true });
  }
}

/**
 * Checks the one line and exit 1 for `args` without git, and that `state()` did not change (soft:
 * every command of a test is run and reported).
 */
function expectGitNotFound(root: string, args: string[], state: () => unknown, env?: Record<string, string>) {
  const before = state();
  const r = lockstepWithoutGit(root, args, env);
  expect.soft({ stderr: r.stderr, status: r.status }, args.join(' ')).toEqual({
    stderr: `lockstep: ${GIT_NOT_FOUND}`,
    status: 1,
  });
  expect.soft(state(), `${args.join(' ')} changed nothing`).toEqual(before);
}

describe('git not on PATH: commands that run git through simple-git or a worktree', () => {
  it('exp run, exp run --queue, exp comment, exp pull and exp queue start say git is missing and record nothing', async () => {
    t = await createExperimentRepo('train:\n  lr: 0.01\n  epochs: 3\ndata:\n  seed: 1\n');
    const root = t.root;
    expect(
      (await cliIn(root, 'exp', 'run', '-S', 'train.lr=0.03', '--name', 'q-1', '--queue', ...PIPE)).code,
    ).toBe(0);
    const queueDir = path.join(t.repo.stateDir, 'queue');
    const state = () => ({
      refs: t!.git('for-each-ref'),
      worktrees: t!.git('worktree', 'list', '--porcelain'),
      status: t!.git('status', '--porcelain'),
      queue: fs.readdirSync(queueDir, { recursive: true }).sort(),
      entry: fs.readFileSync(path.join(queueDir, 'q-1.json'), 'utf8'),
    });
    const body = { LOCKSTEP_COMMENT_BODY: '/lockstep exp run -S train.lr=0.05' };
    // Before: "HEAD: no commit yet", as if the repository had no commit.
    expectGitNotFound(root, ['exp', 'run', '-S', 'train.lr=0.05', '--name', 'lr-05', ...PIPE], state);
    expectGitNotFound(
      root,
      ['exp', 'run', '--queue', '-S', 'train.lr=0.06', '--name', 'q-2', ...PIPE],
      state,
    );
    expectGitNotFound(root, ['exp', 'comment', '--run', '0'], state, body);
    expectGitNotFound(root, ['exp', 'comment', '--queue'], state, body);
    // Before: "git ls-remote failed (Error: spawn git ENOENT). Check the remote's name or URL".
    expectGitNotFound(root, ['exp', 'pull', 'origin'], state);
    // Before: the entry was marked failed with "Error: spawn git ENOENT" and the stack printed.
    expectGitNotFound(root, ['exp', 'queue', 'start'], state);
    expect(JSON.parse(state().entry).state).toBe('queued');
  });

  it('lock resolve says git is missing and leaves the conflicted lockfile as it was', async () => {
    t = await conflictedLockfileRepo();
    // Before: the merged lockfile was written, then `git add` failed: resolved but not staged.
    expectGitNotFound(t.root, ['lock', 'resolve'], () => [
      t!.read('artifacts.lock.yaml'),
      t!.git('status', '--porcelain'),
    ]);
  });

  it('tune says git is missing before it runs a trial or writes a report', async () => {
    t = await createTmpRepo({
      'params.yaml': fs.readFileSync(path.resolve(import.meta.dirname, '../params.yaml'), 'utf8'),
    });
    // Before: the study ran (its trials recorded nowhere) and wrote out/tune/.
    expectGitNotFound(t.root, ['tune', '--no-repro', '--trials', '1'], () => [
      t!.exists('out/tune'),
      t!.read('params.yaml'),
      t!.git('for-each-ref'),
    ]);
  });

  it('promote, rollback, registry tag, exp apply and exp remove say git is missing and move no branch or tag', async () => {
    const r = await makeRegistryRepo();
    try {
      await r.commitModel({ content: 'v1', metrics: GOOD });
      for (const env of ['staging', 'prod'])
        expect((await cliIn(r.dir, 'promote', env, '--local')).code).toBe(0);
      await r.git.checkout('dev');
      await r.commitModel({ content: 'v2', metrics: { accuracy: 0.85, f1_macro: 0.84, mcc: 0.8 } });
      for (const env of ['staging', 'prod'])
        expect((await cliIn(r.dir, 'promote', env, '--local')).code).toBe(0);
      await r.git.checkout('dev');
      await r.commitModel({ content: 'v3', metrics: { accuracy: 0.86, f1_macro: 0.85, mcc: 0.81 } });
      const state = () =>
        execGit(r.dir, 'for-each-ref') +
        execGit(r.dir, 'status', '--porcelain') +
        execGit(r.dir, 'rev-parse', 'HEAD');
      for (const args of [
        ['promote', 'staging', '--local'],
        ['promote', 'staging'],
        ['rollback', 'prod', '--local'],
        ['rollback', 'prod'],
        ['registry', 'tag', 'staging'],
        ['exp', 'apply', 'none'],
        ['exp', 'remove', 'none'],
      ])
        expectGitNotFound(r.dir, args, state, { GITHUB_TOKEN: 'token', GITHUB_REPOSITORY: 'o/r' });
    } finally {
      await r.cleanup();
    }
  });
});

function execGit(root: string, ...args: string[]): string {
  return spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout;
}
