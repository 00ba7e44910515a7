/**
 * A git that is there but cannot run, or that disappears while a command runs, and a working
 * directory removed under simple-git: each ends in one line that names what is wrong, and a
 * command that stops part-way leaves nothing half-written.
 */
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { GIT_NOT_EXECUTABLE, GIT_NOT_FOUND, toOneLine } from '../lib/errors.ts';
import { gitClient } from '../lib/git-client.ts';
import { createTmpRepo, type TmpRepo } from './support/tmp-repo.ts';
import { cliIn, createExperimentRepo } from './experiments/helpers.ts';
import { conflictedLockfileRepo } from './support/conflicted-lockfile.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/lockstep.mjs');
const REAL_GIT = spawnSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).stdout.trim();

let t: TmpRepo | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * A PATH directory holding node and a `git` script: `script` runs before the real git is exec'd
 * with the same arguments ($D is this directory; the script may remove $D/git to make git vanish).
 */
function pathWithGit(script: string | undefined): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-brokengit-'));
  dirs.push(dir);
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  if (script !== undefined)
    fs.writeFileSync(path.join(dir, 'git'), `#!/bin/sh\nD=${dir}\n${script}\nexec ${REAL_GIT} "$@"\n`, {
      mode: 0o755,
    });
  return dir;
}

function lockstep(
  root: string,
  args: string[],
  bin: string,
  env: Record<string, string> = {},
  timeout?: number,
) {
  const started = Date.now();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, PATH: bin, CI: 'true', ...env },
    ...(timeout ? { timeout, killSignal: 'SIGKILL' as const } : {}),
  });
  return { status: r.status, stderr: r.stderr.trim(), stdout: r.stdout.trim(), ms: Date.now() - started };
}

describe('lock resolve when git disappears while it runs', () => {
  for (const [when, script] of [
    ['right after the check that git runs', 'if [ "$1" = --version ]; then /bin/rm -f "$D/git"; fi'],
    [
      'after the three sides were read from the index',
      'if [ "$1" = show ]; then /bin/mkdir "$D/s1" 2>/dev/null || /bin/mkdir "$D/s2" 2>/dev/null || /bin/rm -f "$D/git"; fi',
    ],
  ] as const) {
    it(`${when}: says git is missing and leaves the conflicted lockfile and the index as they were`, async () => {
      t = await conflictedLockfileRepo();
      const state = () => [t!.read('artifacts.lock.yaml'), t!.git('status', '--porcelain')];
      const before = state();
      const bin = pathWithGit(script);
      const r = lockstep(t.root, ['lock', 'resolve'], bin);
      expect(fs.existsSync(path.join(bin, 'git')), 'git vanished').toBe(false);
      expect({ stderr: r.stderr, status: r.status }).toEqual({
        stderr: `lockstep: ${GIT_NOT_FOUND}`,
        status: 1,
      });
      expect(state()).toEqual(before);
    });
  }
});

describe('exp queue start when git disappears during a run', () => {
  it('stops, and every entry (the running one too) is queued again, none failed or lost', async () => {
    t = await createExperimentRepo('train:\n  lr: 0.01\n  epochs: 3\ndata:\n  seed: 1\n');
    const root = t.root;
    // A pipeline whose train stage removes git when it runs with lr 0.03 (the first entry).
    t.write(
      'pipe/drop.ts',
      [
        "import fs from 'node:fs';",
        "import { pipeline as base } from './pipeline.ts';",
        'export function pipeline(params: any) {',
        '  return base(params).map((s: any) =>',
        "    s.name === 'train'",
        '      ? { ...s, async run(ctx: any) { if (params.train.lr === 0.03 && process.env.DROP_GIT) fs.rmSync(process.env.DROP_GIT, { force: true }); return s.run(ctx); } }',
        '      : s,',
        '  );',
        '}',
        '',
      ].join('\n'),
    );
    t.commit('drop pipeline');
    const pipe = ['--pipeline', 'pipe/drop.ts'];
    for (const [name, lr] of [
      ['q-1', '0.03'],
      ['q-2', '0.04'],
      ['q-3', '0.05'],
    ] as const)
      expect(
        (await cliIn(root, 'exp', 'run', '-S', `train.lr=${lr}`, '--name', name, '--queue', ...pipe)).code,
      ).toBe(0);
    const bin = pathWithGit('');
    const r = lockstep(root, ['exp', 'queue', 'start'], bin, { DROP_GIT: path.join(bin, 'git') });
    expect(fs.existsSync(path.join(bin, 'git')), 'git vanished').toBe(false);
    const queueDir = path.join(t.repo.stateDir, 'queue');
    const states = Object.fromEntries(
      ['q-1', 'q-2', 'q-3'].map((n) => [
        n,
        (JSON.parse(fs.readFileSync(path.join(queueDir, `${n}.json`), 'utf8')) as { state: string }).state,
      ]),
    );
    expect(states).toEqual({ 'q-1': 'queued', 'q-2': 'queued', 'q-3': 'queued' });
    expect(r.stderr.split('\n').at(-1)).toBe(`lockstep: ${GIT_NOT_FOUND}`);
    expect(r.status).toBe(1);
    expect(t.git('for-each-ref', 'refs/exps')).toBe('');
  }, 120_000);
});

describe('a working directory removed under a simple-git command', () => {
  it('is said as a directory that does not exist, not as a missing git', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-gone-'));
    const git = gitClient(dir);
    fs.rmSync(dir, { recursive: true, force: true });
    const err = await git.raw(['status']).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(toOneLine(err)).not.toBe(GIT_NOT_FOUND);
    expect(toOneLine(err)).toBe(`${dir}: directory does not exist. Run lockstep inside a git repository.`);
  });
});

describe('a git on PATH that cannot be executed', () => {
  it('exp run and exp show say so in one line naming the fix, not "no commit yet" or spawn EACCES', async () => {
    t = await createTmpRepo({ 'a.txt': 'a\n' });
    const bin = pathWithGit(undefined);
    fs.writeFileSync(path.join(bin, 'git'), 'not a program\n', { mode: 0o644 });
    const refs = t.git('for-each-ref');
    for (const args of [
      ['exp', 'run', '--name', 'x'],
      ['exp', 'show'],
      ['lock', 'resolve'],
    ]) {
      const r = lockstep(t.root, args, bin);
      expect.soft({ stderr: r.stderr, status: r.status }, args.join(' ')).toEqual({
        stderr: `lockstep: ${GIT_NOT_EXECUTABLE}`,
        status: 1,
      });
    }
    expect(t.git('for-each-ref')).toBe(refs);
  });
});

describe('a git on PATH that starts but does not work', () => {
  const broken = [
    ['exits 127 and prints nothing', 'exit 127'],
    ['prints something else and exits 0', 'echo garbage'],
  ] as const;

  it('exp queue start says so before it claims an entry, and every entry stays queued', async () => {
    t = await createExperimentRepo('train:\n  lr: 0.01\n  epochs: 3\ndata:\n  seed: 1\n');
    for (const name of ['q-1', 'q-2'])
      expect(
        (
          await cliIn(
            t.root,
            'exp',
            'run',
            '-S',
            'train.lr=0.02',
            '--name',
            name,
            '--queue',
            '--pipeline',
            'pipe/pipeline.ts',
          )
        ).code,
      ).toBe(0);
    const queueDir = path.join(t.repo.stateDir, 'queue');
    const entries = () =>
      ['q-1', 'q-2'].map((n) => fs.readFileSync(path.join(queueDir, `${n}.json`), 'utf8'));
    const before = entries();
    for (const [what, script] of broken) {
      const bin = pathWithGit(`${script}\n`);
      const r = lockstep(t.root, ['exp', 'queue', 'start'], bin);
      expect.soft({ stderr: r.stderr, status: r.status }, what).toEqual({
        stderr: expect.stringMatching(/^lockstep: git: the git on PATH does not work \(.*\)\. .*PATH.*$/),
        status: 1,
      });
      expect.soft(entries(), what).toEqual(before);
    }
  }, 120_000);

  it('a read command that fails on what such a git answers blames that git, not a revision or a parse', async () => {
    t = await createExperimentRepo('train:\n  lr: 0.01\n  epochs: 3\ndata:\n  seed: 1\n');
    // Before: "Cannot read properties of undefined (reading 'split')" from exp show, "git:
    // unknown revision "HEAD"" from params diff, "cannot read its history (git log exited with
    // code 127)" from registry list.
    const cases = [
      ['exits 127 and prints nothing', 'exit 127', ['params', 'diff'], 'nothing'],
      ['exits 127 and prints nothing', 'exit 127', ['registry', 'list'], 'nothing'],
      ['prints something else and exits 0', 'echo garbage', ['exp', 'show'], '"garbage"'],
      ['prints something else and exits 0', 'echo garbage', ['params', 'diff'], '"garbage"'],
    ] as const;
    for (const [what, script, args, said] of cases) {
      const r = lockstep(t.root, [...args], pathWithGit(`${script}\n`));
      expect.soft({ stderr: r.stderr, status: r.status }, `${args.join(' ')}: git ${what}`).toEqual({
        stderr: `lockstep: git: the git on PATH does not work ('git --version' answered ${said}). Put a working git first on PATH (which git shows it), then run the command again.`,
        status: 1,
      });
    }
  }, 120_000);

  it('lock resolve says so and leaves the conflicted lockfile as it was', async () => {
    t = await conflictedLockfileRepo();
    const state = () => [t!.read('artifacts.lock.yaml'), t!.git('status', '--porcelain')];
    const before = state();
    for (const [what, script] of broken) {
      const r = lockstep(t.root, ['lock', 'resolve'], pathWithGit(`${script}\n`));
      expect.soft({ stderr: r.stderr, status: r.status }, what).toEqual({
        stderr: expect.stringMatching(/^lockstep: git: the git on PATH does not work \(.*\)\. .*PATH.*$/),
        status: 1,
      });
      expect.soft(state(), what).toEqual(before);
    }
  });
});

/**
 * A broken git on PATH while a command fails for a reason of its own: the command's own error,
 * and its exit code, are what the user sees, and the CLI does not wait forever on the git check.
 */
describe('a command that fails on its own while the git on PATH is broken', () => {
  it('add (which needs no git) of a path through a file says ENOTDIR, not that git is broken', async () => {
    t = await createTmpRepo({ 'f.txt': 'hi\n' });
    const good = lockstep(t.root, ['add', 'f.txt/x'], pathWithGit(''));
    const broken = lockstep(t.root, ['add', 'f.txt/x'], pathWithGit('exit 127'));
    expect(good.stderr).toMatch(/ENOTDIR/);
    expect({ stderr: broken.stderr, status: broken.status }).toEqual({
      stderr: good.stderr,
      status: good.status,
    });
  }, 60_000);

  it('add .git is a usage error (exit 2) whatever git is on PATH', async () => {
    t = await createTmpRepo({ 'f.txt': 'hi\n' });
    const good = lockstep(t.root, ['add', '.git'], pathWithGit(''));
    const broken = lockstep(t.root, ['add', '.git'], pathWithGit('exit 127'));
    expect(good.status).toBe(2);
    expect({ stderr: broken.stderr, status: broken.status }).toEqual({
      stderr: good.stderr,
      status: good.status,
    });
  }, 60_000);

  it('add of a missing file in a repository kept under ~/git/ names the file', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-githome-'));
    dirs.push(parent);
    fs.mkdirSync(path.join(parent, 'git', 'proj'), { recursive: true });
    t = await createTmpRepo({ 'f.txt': 'hi\n' });
    const root = path.join(parent, 'git', 'proj');
    fs.cpSync(t.root, root, { recursive: true });
    const missing = path.join(root, 'data', 'missing.bin');
    const good = lockstep(root, ['-C', root, 'add', missing], pathWithGit(''));
    const broken = lockstep(root, ['-C', root, 'add', missing], pathWithGit('exit 127'));
    expect(good.status).not.toBe(0);
    expect({ stderr: broken.stderr, status: broken.status }).toEqual({
      stderr: good.stderr,
      status: good.status,
    });
  }, 60_000);

  it('a git that never answers --version does not hold the failed command open', async () => {
    t = await createTmpRepo({ 'params.yaml': 'train:\n  lr: 0.1\n' });
    const hang = pathWithGit('if [ "$1" = --version ]; then exec /bin/sleep 600; fi');
    const r = lockstep(t.root, ['params', 'diff', 'no-such-rev'], hang, {}, 30_000);
    expect(r.status, `exited after ${r.ms} ms`).toBe(1);
    expect(r.stderr).toMatch(/no-such-rev/);
    expect(r.ms).toBeLessThan(15_000);
  }, 60_000);
});
