import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { createPipelineRepo, FIXTURE_PIPELINE, takeRuns } from '../pipeline/helpers.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

async function cli(...args: string[]) {
  const out = memoryOutput();
  const code = await main(['-C', t!.root, ...args], out);
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr };
}

/** Every file under the repo except .git, with contents, to prove a command changed nothing. */
function snapshot(root: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) walk(abs);
      else files[path.relative(root, abs)] = fs.readFileSync(abs, 'latin1');
    }
  };
  walk(root);
  return files;
}

const lr = (v: number) => `data:\n  seed: 1\ntrain:\n  lr: ${v}\n  epochs: 3\n`;

describe('cli', () => {
  it.each([
    [
      'malformed lockfile',
      'artifacts.lock.yaml',
      'schema: 1\nstages: {\n',
      /^lockstep: artifacts\.lock\.yaml:\d+: invalid YAML: .*restore the file from git\.$/,
    ],
    [
      'future-schema lockfile',
      'artifacts.lock.yaml',
      'schema: 9\ndata: {}\nstages: {}\n',
      /^lockstep: artifacts\.lock\.yaml:1: schema: unknown schema version 9\. This lockstep reads version 1; upgrade lockstep\.$/,
    ],
    [
      'bad params',
      'params.yaml',
      'train:\n  epochs: ten\n',
      /^lockstep: params\.yaml:2: train\.epochs: expected integer, got "ten"\. Fix the value\.$/,
    ],
    [
      'unknown params key',
      'params.yaml',
      'train:\n  epochz: 3\n',
      /^lockstep: params\.yaml:2: train\.epochz: unknown key "epochz"\./,
    ],
  ])(
    'cli repro with a %s exits 1 with one line and changes nothing',
    async (_name, file, content, pattern) => {
      t = await createPipelineRepo();
      t.write(file, content);
      const before = snapshot(t.root);
      for (const args of [
        ['repro', '--pipeline', FIXTURE_PIPELINE],
        ['status', '--pipeline', FIXTURE_PIPELINE],
      ]) {
        const r = await cli(...args);
        expect(r.code).toBe(1);
        expect(r.stderr).toHaveLength(1);
        expect(r.stderr[0]).toMatch(pattern);
      }
      expect(snapshot(t.root)).toEqual(before);
    },
  );

  it('cli repro with three mistakes in params.yaml prints all three, one line each, with their lines', async () => {
    t = await createPipelineRepo();
    t.write('params.yaml', 'train:\n  epochs: ten\n  lr: 3\ndata:\n  speakrs: 4\n');
    const before = snapshot(t.root);
    const r = await cli('repro', '--pipeline', FIXTURE_PIPELINE);
    expect(r.code).toBe(1);
    expect(r.stderr).toEqual([
      'lockstep: params.yaml:2: train.epochs: expected integer, got "ten". Fix the value.',
      'lockstep: params.yaml:3: train.lr: must be <= 1, got 3. Fix the value.',
      expect.stringMatching(
        /^lockstep: params\.yaml:5: data\.speakrs: unknown key "speakrs"\. .*\(known: .*speakers/,
      ),
    ]);
    expect(snapshot(t.root)).toEqual(before);
  });

  it('cli repro --dry prints a reason per stage and runs nothing', async () => {
    t = await createPipelineRepo();
    const r = await cli('repro', '--dry', '--pipeline', FIXTURE_PIPELINE);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')).toEqual([
      'prepare   run      never run',
      'train     run      never run',
      'evaluate  run      never run',
      'gate      run      never run',
      'report    run      never run',
    ]);
    expect(takeRuns(t)).toEqual([]);
    const json = await cli('repro', '--dry', '--json', '--pipeline', FIXTURE_PIPELINE, 'train');
    expect(JSON.parse(json.stdout)).toEqual({
      stages: [
        { name: 'prepare', action: 'run', reason: 'never run' },
        { name: 'train', action: 'run', reason: 'never run' },
      ],
    });
  });

  it('cli repro with an unknown stage is a usage error (exit 2)', async () => {
    t = await createPipelineRepo();
    const r = await cli('repro', '--pipeline', FIXTURE_PIPELINE, 'trian');
    expect(r.code).toBe(2);
    expect(r.stderr).toEqual([
      'lockstep: repro: unknown stage "trian". Stages: prepare, train, evaluate, gate, report.',
    ]);
  });

  it('cli repro exits 1 naming the skipped dependents of a failed stage', async () => {
    t = await createPipelineRepo();
    t.write('fail-train', '');
    const r = await cli('repro', '--pipeline', FIXTURE_PIPELINE);
    expect(r.code).toBe(1);
    expect(r.stderr.at(-1)).toBe('lockstep: train failed: train was told to fail. Skipped: evaluate, gate.');
    expect(r.stdout).toContain('evaluate  not run   upstream train failed');
  });

  it('cli status lists stale stages and objects missing from the cache', async () => {
    t = await createPipelineRepo();
    expect((await cli('repro', '--pipeline', FIXTURE_PIPELINE)).code).toBe(0);
    let s = JSON.parse((await cli('status', '--json', '--pipeline', FIXTURE_PIPELINE)).stdout);
    expect(s.stale).toEqual([]);
    expect(s.missingLocal).toEqual([]);
    t.write('code/report.txt', 'v2');
    fs.rmSync(path.join(t.root, '.lockstep/cache'), { recursive: true });
    s = JSON.parse((await cli('status', '--json', '--pipeline', FIXTURE_PIPELINE)).stdout);
    expect(s.stale).toEqual(['report']);
    expect(s.stages.find((x: { name: string }) => x.name === 'report').reason).toBe('code changed');
    expect(s.missingLocal.map((m: { path: string }) => m.path).sort()).toEqual([
      'out/eval/metrics.json',
      'out/gate/verdict.json',
      'out/model',
      'out/prepared',
      'out/report.txt',
    ]);
    const text = await cli('status', '--pipeline', FIXTURE_PIPELINE);
    expect(text.stdout).toContain('  report: code changed (run)');
    expect(text.stdout).toContain('missing from the local cache (lockstep pull):');
  });

  it('cli status --remote lists locked artifacts missing on the remote', async () => {
    t = await createPipelineRepo();
    expect((await cli('repro', '--pipeline', FIXTURE_PIPELINE, 'report')).code).toBe(0);
    const remoteDir = path.join(t.root, '..', `${path.basename(t.root)}-remote`);
    fs.mkdirSync(remoteDir);
    try {
      t.write('.lockstep/config.yaml', `remote: origin\nremotes:\n  origin:\n    url: ${remoteDir}\n`);
      let s = JSON.parse((await cli('status', '--json', '--remote', '--pipeline', FIXTURE_PIPELINE)).stdout);
      expect(s.missingRemote.map((m: { path: string }) => m.path)).toEqual(['out/report.txt']);
      fs.cpSync(path.join(t.root, '.lockstep/cache/sha256'), path.join(remoteDir, 'sha256'), {
        recursive: true,
      });
      s = JSON.parse((await cli('status', '--json', '--remote', '--pipeline', FIXTURE_PIPELINE)).stdout);
      expect(s.missingRemote).toEqual([]);
      expect((await cli('status', '--remote', '--pipeline', FIXTURE_PIPELINE)).stdout).toContain(
        'every locked artifact is present',
      );
    } finally {
      fs.rmSync(remoteDir, { recursive: true, force: true });
    }
  });

  it('cli repro --pull restores locked outs from the remote instead of re-running', async () => {
    t = await createPipelineRepo();
    expect((await cli('repro', '--pipeline', FIXTURE_PIPELINE)).code).toBe(0);
    takeRuns(t);
    const remoteDir = path.join(t.root, '..', `${path.basename(t.root)}-remote`);
    try {
      fs.cpSync(path.join(t.root, '.lockstep/cache/sha256'), path.join(remoteDir, 'sha256'), {
        recursive: true,
      });
      t.write('.lockstep/config.yaml', `remote: origin\nremotes:\n  origin:\n    url: ${remoteDir}\n`);
      const model = t.read('out/model/weights.txt');
      fs.rmSync(path.join(t.root, '.lockstep/cache'), { recursive: true });
      fs.rmSync(path.join(t.root, 'out'), { recursive: true });
      const dry = await cli('repro', '--dry', '--pull', '--pipeline', FIXTURE_PIPELINE);
      expect(dry.stdout).toContain(`train     restore  out out/model missing; pulling from`);
      const r = await cli('repro', '--pull', '--pipeline', FIXTURE_PIPELINE);
      expect(r.code).toBe(0);
      expect(takeRuns(t)).toEqual([]);
      expect(t.read('out/model/weights.txt')).toBe(model);
      fs.rmSync(path.join(t.root, 'out'), { recursive: true });
      fs.rmSync(path.join(t.root, '.lockstep/cache'), { recursive: true });
      // without --pull the stages run again
      expect((await cli('repro', '--pipeline', FIXTURE_PIPELINE)).code).toBe(0);
      expect(takeRuns(t)).toEqual(['evaluate', 'gate', 'prepare', 'report', 'train']);
    } finally {
      fs.rmSync(remoteDir, { recursive: true, force: true });
    }
  });

  it('cli params diff and metrics diff compare two commits and the workspace', async () => {
    t = await createPipelineRepo(lr(0.01));
    expect((await cli('repro', '--pipeline', FIXTURE_PIPELINE)).code).toBe(0);
    const c1 = t.commit('lr 0.01');
    t.write('params.yaml', lr(0.015));
    expect((await cli('repro', '--pipeline', FIXTURE_PIPELINE)).code).toBe(0);
    const c2 = t.commit('lr 0.015');
    const p = await cli('params', 'diff', c1, c2);
    expect(p.code).toBe(0);
    const [s1, s2] = [c1.slice(0, 10), c2.slice(0, 10)];
    expect(p.stdout.split('\n')).toEqual([
      `param     ${s1}  ${s2}   delta`,
      `train.lr        0.01       0.015  +0.005`,
    ]);
    const pj = JSON.parse((await cli('params', 'diff', c1, c2, '--json')).stdout);
    expect(pj.rows).toEqual([{ key: 'train.lr', old: 0.01, new: 0.015, delta: expect.closeTo(0.005, 9) }]);
    // HEAD vs workspace by default
    expect((await cli('params', 'diff')).stdout).toBe('no changes');
    t.write('params.yaml', lr(0.02));
    expect(JSON.parse((await cli('params', 'diff', '--json')).stdout).rows[0]).toMatchObject({
      key: 'train.lr',
      old: 0.015,
      new: 0.02,
    });

    // an old revision whose params no longer fit the schema still diffs, from its raw values
    t.write('params.yaml', 'train:\n  lr: 0.02\n  old_knob: 5\n');
    const c3 = t.commit('a key the schema no longer has');
    const legacy = JSON.parse((await cli('params', 'diff', c3, c2, '--json')).stdout);
    expect(legacy.rows.find((r: { key: string }) => r.key === 'train.old_knob')).toMatchObject({ old: 5 });

    const m = JSON.parse((await cli('metrics', 'diff', c1, c2, '--json')).stdout);
    const acc = m.rows.find((r: { key: string }) => r.key === 'evaluate.accuracy');
    expect(acc.old).toBe(1);
    expect(acc.new).toBeCloseTo(0.95);
    expect(acc.pct).toBeCloseTo(-5);
    const md = (await cli('metrics', 'diff', c1, c2, '--md')).stdout.split('\n');
    expect(md[0]).toBe(`| metric | ${c1.slice(0, 10)} | ${c2.slice(0, 10)} | delta | % |`);
    expect(md).toContain('| evaluate.accuracy | 1 | 0.95 | -0.05 | -5.0% |');
    // --changed drops unchanged metrics; params diff lists unchanged params only with --all
    const same = async (...flags: string[]) =>
      JSON.parse((await cli('metrics', 'diff', c2, c2, '--json', ...flags)).stdout).rows;
    expect(await same()).toHaveLength(m.rows.length);
    expect(await same('--changed')).toEqual([]);
    const every = JSON.parse((await cli('params', 'diff', c1, c2, '--json', '--all')).stdout);
    expect(every.rows.length).toBeGreaterThan(pj.rows.length);
    expect(every.rows.map((r: { key: string }) => r.key)).toContain('train.lr');
    const bad = await cli('metrics', 'diff', 'nope');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toEqual([
      'lockstep: git: unknown revision "nope". Use a branch, tag or commit that exists (git log).',
    ]);
  });

  it('cli start runs the pipeline and prints stages, metrics, gate verdict and plots', async () => {
    t = await createPipelineRepo();
    t.write('out/eval/plots/confusion.svg', '<svg/>'); // the fixture evaluate stage does not draw
    const r = await cli('start', '--pipeline', FIXTURE_PIPELINE);
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('stages:');
    expect(lines.some((l) => /^ {2}prepare {3}ran {7}never run( \(\d+\.\ds\))?$/.test(l))).toBe(true);
    expect(lines).toContain('metrics:');
    expect(lines).toContain('  evaluate.accuracy  1');
    expect(lines).toContain('gate: PASSED - accuracy 1.000 >= 0.9');
    expect(lines).toContain('plots:');
    expect(lines).toContain('  out/eval/plots/confusion.svg');
    t.write('params.yaml', lr(0.05));
    const refused = await cli('start', '--pipeline', FIXTURE_PIPELINE);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('gate: FAILED - accuracy 0.600 < 0.9');
    expect(refused.stderr.at(-1)).toBe('lockstep: gate: accuracy 0.600 < 0.9');
  });
});
