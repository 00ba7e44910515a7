/**
 * Two branches that both change params, merged in a real git repository: with the lockfile
 * merge driver installed (git runs bin/lockstep-merge-driver.mjs) and without it (conflict
 * markers, then `lockstep lock resolve`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { parseLockfile } from '../../lib/lockfile.ts';
import { BOTH_SIDES_CHANGED } from '../../lib/lockfile-merge.ts';
import { driverCommand } from '../../lib/lockfile-driver.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { createPipelineRepo, FIXTURE_PIPELINE, takeRuns } from '../pipeline/helpers.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

/** params.yaml with a comment between lr and epochs, so git merges the two edits line-wise. */
const params = (p: { lr?: number; epochs?: number } = {}) =>
  `data:\n  seed: 1\ntrain:\n  lr: ${p.lr ?? 0.01}\n  # epochs: passes over the data\n  epochs: ${p.epochs ?? 3}\n`;

async function cli(...args: string[]) {
  const out = memoryOutput();
  const code = await main(['-C', t!.root, ...args], out);
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr };
}

async function repro(): Promise<string[]> {
  const r = await cli('repro', '--pipeline', FIXTURE_PIPELINE);
  expect(r.code, r.stderr.join('\n')).toBe(0);
  return takeRuns(t!);
}

async function status(): Promise<{
  stale: string[];
  stages: { name: string; reason: string }[];
  conflict?: any;
}> {
  const r = await cli('status', '--json', '--pipeline', FIXTURE_PIPELINE);
  expect(r.code, r.stderr.join('\n')).toBe(0);
  return JSON.parse(r.stdout);
}

/** A branch off `from` that writes params (and optionally files), runs repro and commits. */
async function branch(
  name: string,
  from: string,
  p: Parameters<typeof params>[0],
  files: Record<string, string> = {},
) {
  t!.git('checkout', '-q', '-b', name, from);
  t!.write('params.yaml', params(p));
  for (const [rel, content] of Object.entries(files)) t!.write(rel, content);
  await repro();
  t!.commit(`${name}: ${JSON.stringify(p)}`);
}

/** `git merge`; returns whether git merged without a conflict. */
function merge(ref: string): boolean {
  const r = spawnSync('git', ['merge', '--no-ff', '-m', `merge ${ref}`, ref], {
    cwd: t!.root,
    encoding: 'utf8',
  });
  // The driver ran from its bundle, not from the sources (the slow fallback says so on stderr).
  expect(r.stderr).not.toContain('lockstep-merge-driver: no bundle');
  return r.status === 0;
}

/** The base commit: the pipeline reproduced once on main. */
async function setUp(driver: boolean) {
  t = await createPipelineRepo(params());
  if (driver) {
    const r = await cli('lock', 'install-driver');
    expect(r.code, r.stderr.join('\n')).toBe(0);
    expect(t.read('.gitattributes')).toBe('artifacts.lock.yaml merge=lockstep\n');
  } else {
    // A clone of a repo that commits the attribute but never set the driver up: git's line merge.
    t.write('.gitattributes', 'artifacts.lock.yaml merge=lockstep\n');
  }
  await repro();
  t.commit('base: reproduced');
}

const reasons = (s: Awaited<ReturnType<typeof status>>) =>
  Object.fromEntries(s.stages.filter((x) => s.stale.includes(x.name)).map((x) => [x.name, x.reason]));

const EPOCHS_AND_LR_STALE = {
  train: BOTH_SIDES_CHANGED,
  evaluate: BOTH_SIDES_CHANGED,
  // b's gate read b's metrics; a's gate equals the base (epochs do not move accuracy).
  gate: 'merged: input out/eval/metrics.json changed in the merge',
};
/** What repro then runs: accuracy depends on lr only, so b's gate comes back from the run-cache. */
const RERUN = ['evaluate', 'train'];

describe('lockfile merge driver', () => {
  it('merge driver: a sets train.epochs, b sets train.lr: git merges, the stages both changed re-run', async () => {
    await setUp(true);
    await branch('a', 'main', { epochs: 40 });
    await branch('b', 'main', { lr: 0.002 });
    expect(merge('a')).toBe(true);
    expect(t!.git('status', '--porcelain')).toBe('');
    const text = t!.read('artifacts.lock.yaml');
    const lf = parseLockfile(text);
    expect(Object.keys(lf.stages).sort()).toEqual(['prepare', 'report']);
    expect(lf.stale).toEqual(EPOCHS_AND_LR_STALE);
    expect(reasons(await status())).toEqual(EPOCHS_AND_LR_STALE);
    expect(await repro()).toEqual(RERUN);
    const after = parseLockfile(t!.read('artifacts.lock.yaml'));
    expect(after.stale).toBeUndefined();
    expect(after.stages.train!.params).toEqual({ 'train.epochs': 40, 'train.lr': 0.002 });
    expect((await status()).stale).toEqual([]);
  });

  it("merge driver: the repository's own params.yaml, epochs on one branch and lr on the other", async () => {
    const real = fs.readFileSync(fileURLToPath(new URL('../../params.yaml', import.meta.url)), 'utf8');
    expect(real).toMatch(/^ {2}epochs: \d+$/m);
    expect(real).toMatch(/^ {2}lr: [\d.]+$/m);
    t = await createPipelineRepo(real);
    expect((await cli('lock', 'install-driver')).code).toBe(0);
    await repro();
    t.commit('base');
    const edit = async (name: string, from: RegExp, to: string) => {
      t!.git('checkout', '-q', '-b', name, 'main');
      t!.write('params.yaml', t!.read('params.yaml').replace(from, to));
      await repro();
      t!.commit(name);
    };
    await edit('a', /^ {2}epochs: \d+$/m, '  epochs: 40');
    await edit('b', /^ {2}lr: [\d.]+$/m, '  lr: 0.002');
    expect(merge('a')).toBe(true);
    expect(t.read('params.yaml')).toMatch(/^ {2}epochs: 40\n(?:.*\n)*? {2}lr: 0\.002$/m);
    expect(reasons(await status())).toMatchObject({
      train: BOTH_SIDES_CHANGED,
      evaluate: BOTH_SIDES_CHANGED,
    });
    expect(await repro()).toEqual(expect.arrayContaining(['evaluate', 'train']));
    expect((await status()).stale).toEqual([]);
  });

  it('without the driver: every command names lock resolve, status shows the stale stages, resolve merges', async () => {
    await setUp(false);
    await branch('a', 'main', { epochs: 40 });
    await branch('b', 'main', { lr: 0.002 });
    expect(merge('a')).toBe(false);
    expect(t!.read('artifacts.lock.yaml')).toMatch(/^<<<<<<< /m);
    const expected =
      /^lockstep: artifacts\.lock\.yaml:\d+: unresolved merge conflict \(git conflict markers\)\. Run "npx lockstep lock resolve" to merge it stage by stage, then "npx lockstep repro" to recompute what became stale\.$/;
    for (const args of [
      ['repro', '--pipeline', FIXTURE_PIPELINE],
      ['metrics', 'show'],
      ['gc', '--dry'],
    ]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toEqual([expect.stringMatching(expected)]);
    }
    const s = await status();
    expect(s.conflict.message).toMatch(/unresolved merge conflict.*lockstep lock resolve/);
    expect(reasons(s)).toEqual(EPOCHS_AND_LR_STALE);
    const human = await cli('status', '--pipeline', FIXTURE_PIPELINE);
    expect(human.stdout.split('\n').slice(0, 3)).toEqual([
      expect.stringMatching(/^artifacts\.lock\.yaml:\d+: unresolved merge conflict/),
      'stale stages:',
      `  train: ${BOTH_SIDES_CHANGED} (run)`,
    ]);

    const resolved = await cli('lock', 'resolve');
    expect(resolved.code, resolved.stderr.join('\n')).toBe(0);
    expect(resolved.stdout).toContain('artifacts.lock.yaml: merged per stage and staged (git add)');
    expect(resolved.stdout).toContain(`  train: ${BOTH_SIDES_CHANGED}`);
    // Staged: nothing left unmerged, the merge commits as usual.
    expect(t!.git('diff', '--name-only', '--diff-filter=U')).toBe('');
    t!.git('commit', '-q', '--no-edit');
    expect(parseLockfile(t!.read('artifacts.lock.yaml')).stale).toEqual(EPOCHS_AND_LR_STALE);
    expect(await repro()).toEqual(RERUN);
    expect((await status()).stale).toEqual([]);
    expect((await cli('lock', 'resolve')).stdout).toBe(
      'artifacts.lock.yaml: no conflict markers, nothing to resolve',
    );
  });

  it('merge driver that fails to start: git keeps our side unmerged, lock resolve merges from the index', async () => {
    await setUp(true);
    await branch('a', 'main', { epochs: 40 });
    await branch('b', 'main', { lr: 0.002 });
    // A worktree that never ran npm ci: the configured script is not there.
    t!.git('config', 'merge.lockstep.driver', 'node ./no-such-driver.mjs %O %A %B %P');
    const ours = t!.read('artifacts.lock.yaml');
    expect(merge('a')).toBe(false);
    expect(t!.git('diff', '--name-only', '--diff-filter=U')).toBe('artifacts.lock.yaml');
    expect(t!.read('artifacts.lock.yaml')).toBe(ours);
    const resolved = await cli('lock', 'resolve');
    expect(resolved.code, resolved.stderr.join('\n')).toBe(0);
    expect(parseLockfile(t!.read('artifacts.lock.yaml')).stale).toEqual(EPOCHS_AND_LR_STALE);
    expect(t!.git('diff', '--name-only', '--diff-filter=U')).toBe('');
  });

  it('lockfile deleted on one side, changed on the other: lock resolve says so and how to finish, changes nothing', async () => {
    await setUp(true);
    await branch('a', 'main', { epochs: 40 });
    t!.git('checkout', '-q', '-b', 'b', 'main');
    t!.git('rm', '-q', 'artifacts.lock.yaml');
    t!.git('commit', '-q', '-m', 'b: no lockfile');
    expect(merge('a')).toBe(false);
    expect(t!.git('diff', '--name-only', '--diff-filter=U')).toBe('artifacts.lock.yaml');
    const theirs = t!.read('artifacts.lock.yaml');
    const r = await cli('lock', 'resolve');
    expect(r.code).toBe(1);
    expect(r.stderr).toEqual([
      'lockstep: artifacts.lock.yaml: deleted on our side of the merge and changed on the other, so there is nothing to merge per stage. Keep the changed one with "git add artifacts.lock.yaml" and run "npx lockstep repro", or drop it with "git rm artifacts.lock.yaml".',
    ]);
    expect(t!.read('artifacts.lock.yaml')).toBe(theirs);
    expect(t!.git('diff', '--name-only', '--diff-filter=U')).toBe('artifacts.lock.yaml');
    // Following the fix: keep it, and the workspace is consistent.
    t!.git('add', 'artifacts.lock.yaml');
    expect((await cli('lock', 'resolve')).stdout).toBe(
      'artifacts.lock.yaml: no conflict markers, nothing to resolve',
    );
    await repro();
    expect((await status()).stale).toEqual([]);
  });

  it('merge driver: three branches merged in turn give the lockfile a fresh run gives', async () => {
    await setUp(true);
    await branch('a', 'main', { epochs: 40 });
    await branch('b', 'main', { lr: 0.002 });
    await branch('c', 'main', {}, { 'code/report.txt': 'report v2\n' });
    t!.git('checkout', '-q', 'main');
    takeRuns(t!);
    expect(merge('a')).toBe(true);
    expect(merge('b')).toBe(true);
    expect(merge('c')).toBe(true);
    expect(t!.git('status', '--porcelain')).toBe('');
    const lf = parseLockfile(t!.read('artifacts.lock.yaml'));
    // c only touched report: taken as is; the stale marks of the a/b merge survive c's merge.
    expect(lf.stale).toEqual(EPOCHS_AND_LR_STALE);
    expect(Object.keys(lf.stages).sort()).toEqual(['prepare', 'report']);
    expect(await repro()).toEqual(RERUN);
    t!.commit('repro after merges');
    const merged = t!.read('artifacts.lock.yaml');
    // Every entry left in the lockfile is what running the stage gives: a forced run changes nothing.
    const forced = await cli('repro', '--force', '--pipeline', FIXTURE_PIPELINE);
    expect(forced.code).toBe(0);
    expect(takeRuns(t!)).toEqual(['evaluate', 'gate', 'prepare', 'report', 'train']);
    expect(t!.read('artifacts.lock.yaml')).toBe(merged);
  });

  it('merge driver: both sides trained the same stage with the same inputs: no conflict, nothing stale', async () => {
    await setUp(true);
    // Both set epochs 40; a also changes report's code, so the two lockfiles differ and git
    // hands them to the driver.
    await branch('a', 'main', { epochs: 40 }, { 'code/report.txt': 'report v2\n' });
    const aLock = parseLockfile(t!.read('artifacts.lock.yaml'));
    await branch('b', 'main', { epochs: 40 });
    expect(parseLockfile(t!.read('artifacts.lock.yaml')).stages.train).toEqual(aLock.stages.train);
    expect(merge('a')).toBe(true);
    const lf = parseLockfile(t!.read('artifacts.lock.yaml'));
    expect(lf.stale).toBeUndefined();
    expect(lf).toEqual(aLock);
    expect((await status()).stale).toEqual([]);
    expect(await repro()).toEqual([]);
  });

  it('merge driver: a side it cannot read leaves the file conflicted and says why', async () => {
    await setUp(true);
    t!.git('checkout', '-q', '-b', 'broken');
    t!.write('artifacts.lock.yaml', t!.read('artifacts.lock.yaml').replace('schema: 1', 'schema: 9'));
    t!.commit('a lockfile from a newer lockstep');
    t!.git('checkout', '-q', 'main');
    await branch('b', 'main', { lr: 0.002 });
    const r = spawnSync('git', ['merge', '-m', 'merge broken', 'broken'], { cwd: t!.root, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr + r.stdout).toMatch(
      /artifacts\.lock\.yaml \(theirs\):\d+: schema: unknown schema version 9/,
    );
    expect(r.stderr + r.stdout).toContain('artifacts.lock.yaml: merged line by line instead');
    // Left to the user as a conflict (git's line merge in the file), never silently accepted.
    expect(t!.git('diff', '--name-only', '--diff-filter=U')).toBe('artifacts.lock.yaml');
  });
});

describe('driverCommand', () => {
  it.each([
    [
      'inside the work tree: relative, so linked worktrees each run their own',
      '/r',
      '/r/node_modules/lockstep/bin/d.mjs',
      "node 'node_modules/lockstep/bin/d.mjs' %O %A %B %P",
    ],
    [
      'outside the work tree: absolute',
      '/r',
      '/opt/lockstep/bin/d.mjs',
      "node '/opt/lockstep/bin/d.mjs' %O %A %B %P",
    ],
    ['a quote in the path is shell-quoted', '/r', "/o'k/d.mjs", "node '/o'\\''k/d.mjs' %O %A %B %P"],
  ])('driverCommand %s', (_name, top, script, expected) => {
    expect(driverCommand(top, script)).toBe(expected);
  });
});

describe('postinstall', () => {
  const PKG_ROOT = fileURLToPath(new URL('../..', import.meta.url));
  const script = JSON.parse(fs.readFileSync(path.join(PKG_ROOT, 'package.json'), 'utf8')).scripts
    .postinstall as string;
  const configured = (root: string) =>
    spawnSync('git', ['config', '--local', '--get', 'merge.lockstep.driver'], {
      cwd: root,
      encoding: 'utf8',
    }).stdout.trim();
  /** Runs package.json's postinstall the way npm does: a shell in the package root, INIT_CWD set. */
  const postinstall = (initCwd: string, env: Record<string, string> = {}, pkgRoot = PKG_ROOT) => {
    const clean: Record<string, string | undefined> = { ...process.env, INIT_CWD: initCwd, ...env };
    if (!('CI' in env)) delete clean.CI;
    delete clean.LOCKSTEP_NO_MERGE_DRIVER;
    return spawnSync(script, {
      shell: true,
      cwd: pkgRoot,
      env: clean as NodeJS.ProcessEnv,
      encoding: 'utf8',
    });
  };

  it('postinstall sets the driver in the git work tree npm ran in, and nothing in CI or outside git', async () => {
    t = await createPipelineRepo(params());
    const ci = postinstall(t.root, { CI: 'true' });
    expect(ci.status).toBe(0);
    expect(configured(t.root)).toBe('');
    const local = postinstall(t.root);
    expect(local.status, local.stderr).toBe(0);
    expect(configured(t.root)).toMatch(/^node '.*bin\/lockstep-merge-driver\.mjs' %O %A %B %P$/);
    // Tracked files are never edited by an install.
    expect(t.exists('.gitattributes')).toBe(false);
    const plain = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-nogit-'));
    try {
      const outside = postinstall(plain, { GIT_CEILING_DIRECTORIES: os.tmpdir() });
      expect(outside.status).toBe(0);
      expect(outside.stdout + outside.stderr).toBe('');
      expect(fs.readdirSync(plain)).toEqual([]);
      // package.json without the rest of the package (a Docker layer that copies it alone).
      fs.copyFileSync(path.join(PKG_ROOT, 'package.json'), path.join(plain, 'package.json'));
      const bare = postinstall(t.root, {}, plain);
      expect(bare.status).toBe(0);
      expect(bare.stdout + bare.stderr).toBe('');
    } finally {
      fs.rmSync(plain, { recursive: true, force: true });
    }
  });

  it('the repository routes its lockfile to the driver', () => {
    expect(
      execFileSync('git', ['check-attr', 'merge', 'artifacts.lock.yaml'], {
        cwd: PKG_ROOT,
        encoding: 'utf8',
      }).trim(),
    ).toBe('artifacts.lock.yaml: merge: lockstep');
  });
});
