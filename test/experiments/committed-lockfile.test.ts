import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { cliIn } from './helpers.ts';

let t: TmpRepo | undefined;
let dir: string | undefined;
afterEach(async () => {
  await t?.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  t = dir = undefined;
});

const LOCK = 'schema: 1\ndata: {}\nstages: {}\n';

/** An experiment ref whose commit holds `lockText` as its lockfile (main stays as it was). */
function experimentWithLockfile(repo: TmpRepo, name: string, lockText: string): void {
  const git = (input: string, ...args: string[]) =>
    execFileSync('git', args, { cwd: repo.root, input, encoding: 'utf8' }).trim();
  const blob = git(lockText, 'hash-object', '-w', '--stdin');
  const params = repo.git('rev-parse', 'HEAD:params.yaml');
  const tree = git(
    `100644 blob ${blob}\tartifacts.lock.yaml\n100644 blob ${params}\tparams.yaml\n`,
    'mktree',
  );
  const meta = {
    name,
    kind: 'run',
    overrides: {},
    metrics: {},
    status: 'ok',
    created: '2026-01-01T00:00:00Z',
  };
  const commit = repo.git('commit-tree', tree, '-p', 'HEAD', '-m', `exp: ${name}\n\n${JSON.stringify(meta)}`);
  repo.git('update-ref', `refs/exps/${name}`, commit);
}

describe('an experiment whose committed lockfile is malformed', () => {
  it.each([
    ['broken YAML', 'schema: 1\nstages: {\n', /:3: invalid YAML: /],
    [
      'conflict markers',
      'schema: 1\n<<<<<<< HEAD\ndata: {}\n=======\n>>>>>>> b\n',
      /:2: unresolved merge conflict /,
    ],
    [
      'a bad value',
      'schema: 1\ndata: {}\nstages:\n  a:\n    code: 5\n',
      /:5: stages\.a\.code: expected string/,
    ],
  ])(
    'with %s: exp apply, push and pull fail with one line naming the lockfile at the experiment and the fix, and change nothing',
    async (_what, lockText, problem) => {
      t = await createTmpRepo({ 'params.yaml': 'train:\n  epochs: 3\n', 'artifacts.lock.yaml': LOCK });
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-exp-lock-'));
      t.write(
        '.lockstep/config.yaml',
        `remote: shared\nremotes:\n  shared:\n    url: ${path.join(dir, 'artifacts')}\n`,
      );
      experimentWithLockfile(t, 'bad', lockText);
      const bare = path.join(dir, 'team.git');
      execFileSync('git', ['init', '-q', '--bare', bare]);
      const expected = new RegExp(
        `^lockstep: artifacts\\.lock\\.yaml@refs/exps/bad${problem.source}.*The experiment's commit cannot be edited: remove it \\(lockstep exp remove bad\\) and run it again\\.$`,
      );
      for (const args of [
        ['exp', 'apply', 'bad'],
        ['exp', 'push', bare, 'bad'],
      ]) {
        const r = await cliIn(t.root, ...args);
        expect(r.code, r.err).toBe(1);
        expect(r.err.split('\n')).toHaveLength(1);
        expect(r.err).toMatch(expected);
        expect(r.err).not.toMatch(/lock resolve|restore the file/);
        expect(t.read('artifacts.lock.yaml')).toBe(LOCK);
      }
      // The ref was pushed with git: pulling it into a clone reads the same lockfile.
      execFileSync('git', ['push', '-q', bare, 'HEAD:refs/heads/main', 'refs/exps/bad:refs/exps/bad'], {
        cwd: t.root,
      });
      const clone = path.join(dir, 'b');
      execFileSync('git', ['clone', '-q', bare, clone]);
      fs.mkdirSync(path.join(clone, '.lockstep'), { recursive: true });
      fs.copyFileSync(path.join(t.root, '.lockstep/config.yaml'), path.join(clone, '.lockstep/config.yaml'));
      const pulled = await cliIn(clone, 'exp', 'pull', 'origin', 'bad');
      expect(pulled.code, pulled.err).toBe(1);
      expect(pulled.err).toMatch(expected);
    },
  );
});
