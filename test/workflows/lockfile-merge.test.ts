/**
 * lockfile-merge.yml's shell steps, run the way the runner runs them (bash -eo pipefail) against
 * real git repositories: an "origin" (bare, with refs/pull/N/head), and a clone at the pushed
 * base as actions/checkout leaves it. `npx lockstep` resolves to this checkout's CLI, with the
 * fixture pipeline.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseLockfile } from '../../lib/lockfile.ts';
import { BOTH_SIDES_CHANGED } from '../../lib/lockfile-merge.ts';
import { createPipelineRepo, FIXTURE_PIPELINE, runFixture } from '../pipeline/helpers.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const workflow = parse(fs.readFileSync(path.join(ROOT, '.github/workflows/lockfile-merge.yml'), 'utf8')) as {
  jobs: { merge: { steps: { name?: string; run?: string }[] } };
};
const step = (name: string) => {
  const s = workflow.jobs.merge.steps.find((x) => x.name === name);
  if (!s?.run) throw new Error(`lockfile-merge.yml: no step "${name}"`);
  return s.run;
};

const params = (p: { lr?: number; epochs?: number } = {}) =>
  `data:\n  seed: 1\ntrain:\n  lr: ${p.lr ?? 0.01}\n  # epochs: passes over the data\n  epochs: ${p.epochs ?? 3}\n`;

let dirs: string[] = [];
let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});

function tmp(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** origin with main (base) and PR #1 from `pr` (params edit + repro), main moved on by `main`. */
async function setUp(
  prParams: Parameters<typeof params>[0],
  mainParams: Parameters<typeof params>[0],
  prFiles: Record<string, string> = {},
) {
  t = await createPipelineRepo(params());
  t.write('.gitattributes', 'artifacts.lock.yaml merge=lockstep\n');
  await runFixture(t);
  t.commit('base');
  const build = async (
    branch: string,
    p: Parameters<typeof params>[0],
    files: Record<string, string> = {},
  ) => {
    t!.git('checkout', '-q', '-B', branch, 'main');
    t!.write('params.yaml', params(p));
    for (const [rel, content] of Object.entries(files)) t!.write(rel, content);
    await runFixture(t!);
    t!.commit(branch);
  };
  await build('topic', prParams, prFiles);
  await build('next', mainParams);
  t.git('checkout', '-q', 'main');
  t.git('merge', '-q', '--ff-only', 'next');
  const origin = tmp('lockstep-origin-');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  t.git('push', '-q', origin, 'main', 'topic', 'topic:refs/pull/1/head');
  const runner = tmp('lockstep-runner-');
  execFileSync('git', ['clone', '-q', '-b', 'main', origin, runner]);
  for (const [k, v] of [
    ['user.name', 'Test'],
    ['user.email', 'test@example.com'],
  ])
    execFileSync('git', ['config', k!, v!], { cwd: runner });
  // `npx lockstep ...` → this checkout's CLI; status and repro use the fixture pipeline.
  const bin = tmp('lockstep-bin-');
  fs.writeFileSync(
    path.join(bin, 'npx'),
    `#!/bin/sh\n[ "$1" = lockstep ] || exit 99\nshift\ncase "$1" in status|repro) set -- "$@" --pipeline '${FIXTURE_PIPELINE}';; esac\nexec '${process.execPath}' '${path.join(ROOT, 'bin/lockstep.mjs')}' "$@"\n`,
    { mode: 0o755 },
  );
  const outputs = path.join(tmp('lockstep-gh-'), 'out');
  const env = {
    ...process.env,
    PATH: `${bin}${path.delimiter}${process.env.PATH}`,
    BASE: 'main',
    PR: '1',
    HEAD_REF: 'topic',
    FORK: 'false',
    GITHUB_SHA: execFileSync('git', ['rev-parse', 'HEAD'], { cwd: runner, encoding: 'utf8' }).trim(),
    GITHUB_OUTPUT: outputs,
    GITHUB_STEP_SUMMARY: `${outputs}.summary`,
    REPRO: 'success',
  } as NodeJS.ProcessEnv;
  delete env.CI;
  const run = (name: string, extra: Record<string, string> = {}) => {
    fs.writeFileSync(outputs, '');
    const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', step(name)], {
      cwd: runner,
      env: { ...env, ...extra },
      encoding: 'utf8',
    });
    const out = Object.fromEntries(
      fs
        .readFileSync(outputs, 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    return { status: r.status, log: r.stdout + r.stderr, out };
  };
  return { origin, runner, run };
}

const CHECK = 'Does the lockfile conflict with the base?';

describe('lockfile-merge.yml', () => {
  it('lockfile-merge merges the base into a PR whose only conflict is the lockfile, re-runs stale stages, pushes', async () => {
    const { origin, runner, run } = await setUp({ epochs: 40 }, { lr: 0.002 });
    const check = run(CHECK);
    expect(check.status, check.log).toBe(0);
    expect(check.out.action).toBe('merge');
    expect(check.log).toContain('Conflicting files:\nartifacts.lock.yaml');
    const merged = run('Merge the base in, the lockfile per stage');
    expect(merged.status, merged.log).toBe(0);
    expect(merged.log).toContain(`train: ${BOTH_SIDES_CHANGED}`);
    const repro = run('Re-run the stages the merge left stale');
    expect(repro.status, repro.log).toBe(0);
    const pushed = run('Commit the lockfile and push to the PR branch');
    expect(pushed.status, pushed.log).toBe(0);
    // The PR branch now holds main and a lockfile computed for the merged params.
    const git = (...a: string[]) => execFileSync('git', a, { cwd: origin, encoding: 'utf8' }).trim();
    expect(spawnSync('git', ['merge-base', '--is-ancestor', 'main', 'topic'], { cwd: origin }).status).toBe(
      0,
    );
    const lf = parseLockfile(git('show', 'topic:artifacts.lock.yaml'));
    expect(lf.stale).toBeUndefined();
    expect(lf.stages.train!.params).toEqual({ 'train.epochs': 40, 'train.lr': 0.002 });
    expect(git('log', '-1', '--format=%s', 'topic')).toBe(
      'lockstep: re-run the stages stale after merging main',
    );
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: runner, encoding: 'utf8' })).toBe('');
  });

  it.each([
    ['a PR that merges cleanly is left alone', {}, {}, 'none', /merges cleanly/],
    [
      'a PR that also conflicts in params.yaml is left for a person',
      { lr: 0.02 },
      {},
      'none',
      /more than artifacts\.lock\.yaml/,
    ],
    [
      'a fork PR gets a comment instead of a push',
      { epochs: 40 },
      { FORK: 'true' },
      'comment',
      /Conflicting files/,
    ],
  ])('lockfile-merge: %s', async (_name, prParams, extra, action, log) => {
    // main moves by lr; the PR with default params only adds a file.
    const { run } = await setUp(prParams, { lr: 0.002 }, { 'notes.txt': 'x\n' });
    const check = run(CHECK, extra);
    expect(check.status, check.log).toBe(0);
    expect(check.out.action).toBe(action);
    expect(check.log).toMatch(log);
  });
});
