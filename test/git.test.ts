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
