import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { repoAt } from '../../lib/repo.ts';
import { unloadHashState } from '../../lib/store/hash-state.ts';
import { memoryOutput } from '../../lib/output.ts';
import type { TmpRepo } from '../support/tmp-repo.ts';
import { createPipelineRepo, FIXTURE_PIPELINE } from '../pipeline/helpers.ts';

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

async function status() {
  const r = await cli('status', '--json', '--pipeline', FIXTURE_PIPELINE);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { changedData: { path: string; state: string }[]; missingLocal: unknown[] };
}

describe('cli status', () => {
  it('cli status reports tracked data whose bytes differ from the lockfile, and a cache object removed', async () => {
    t = await createPipelineRepo();
    t.write('corpus/a.txt', 'alpha');
    t.write('corpus/b.txt', 'beta');
    expect((await cli('add', 'corpus')).code).toBe(0);
    expect((await status()).changedData).toEqual([]);
    // Twice: the second answers from the status index.
    expect((await status()).changedData).toEqual([]);
    t.write('corpus/b.txt', 'BETA');
    expect((await status()).changedData).toEqual([{ path: 'corpus', state: 'modified' }]);
    const text = await cli('status', '--pipeline', FIXTURE_PIPELINE);
    expect(text.stdout).toContain(
      'tracked data changed since the lockfile (lockstep add <path> records it):',
    );
    expect(text.stdout).toContain('  corpus: modified');
    t.write('corpus/b.txt', 'beta');
    expect((await status()).changedData).toEqual([]);
    fs.rmSync(path.join(t.root, 'corpus'), { recursive: true });
    expect((await status()).changedData).toEqual([{ path: 'corpus', state: 'missing' }]);
    // Objects removed behind lockstep's back are still found missing.
    fs.rmSync(path.join(t.root, '.lockstep/cache'), { recursive: true });
    expect((await status()).missingLocal).not.toEqual([]);
  });
});

describe('cli status without a writable state directory', () => {
  it('cli status answers when .lockstep/state cannot be written (it only hashes again next time)', async () => {
    t = await createPipelineRepo();
    t.write('corpus/a.txt', 'alpha');
    expect((await cli('add', 'corpus')).code).toBe(0);
    // A state directory that cannot be written to, even by root: a file stands in its place.
    const state = path.join(t.root, '.lockstep/state');
    fs.rmSync(state, { recursive: true, force: true });
    fs.writeFileSync(state, '');
    unloadHashState(repoAt(t.root));
    for (let i = 0; i < 2; i++) expect((await status()).changedData).toEqual([]);
    t.write('corpus/a.txt', 'ALPHA');
    expect((await status()).changedData).toEqual([{ path: 'corpus', state: 'modified' }]);
    expect(fs.readFileSync(state, 'utf8')).toBe('');
  });
});

describe('cli status with tracked data behind a symlink', () => {
  it('cli status reports a tracked directory swapped for a symlink that leads out, and goes on', async () => {
    t = await createPipelineRepo();
    t.write('corpus/a.txt', 'alpha');
    expect((await cli('add', 'corpus')).code).toBe(0);
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-outside-'));
    try {
      fs.cpSync(path.join(t.root, 'corpus'), outside, { recursive: true, preserveTimestamps: true });
      fs.rmSync(path.join(t.root, 'corpus'), { recursive: true });
      fs.symlinkSync(outside, path.join(t.root, 'corpus'));
      const s = await status();
      expect(s.changedData).toHaveLength(1);
      expect(s.changedData[0]).toMatchObject({ path: 'corpus', state: 'unreadable' });
      expect(s.missingLocal).toEqual([]);
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
  });
});

const BASELINE_PIPELINE = fileURLToPath(new URL('./fixtures/baseline-pipeline.ts', import.meta.url));

describe('cli status answered from its cache', () => {
  const answerFile = () => path.join(t!.root, '.lockstep/state/status-answer.json');

  async function plainStatus(): Promise<string> {
    const r = await cli('status', '--pipeline', BASELINE_PIPELINE);
    expect(r.code, r.stderr.join('\n')).toBe(0);
    return r.stdout;
  }

  /**
   * Waits out the racy window, lets status write its cache, and marks the cached answer so a
   * status that takes it shows the mark: then the cache is known to be used while valid.
   */
  async function cacheAndMark(): Promise<void> {
    await new Promise((res) => setTimeout(res, 1100));
    fs.rmSync(answerFile(), { force: true });
    await plainStatus();
    const body = JSON.parse(fs.readFileSync(answerFile(), 'utf8'));
    body.stages[0].reason = 'MARK';
    body.stale = [body.stages[0].name];
    body.stages[0].action = 'run';
    fs.writeFileSync(answerFile(), JSON.stringify(body));
    expect(await plainStatus()).toContain('MARK');
  }

  /** Status after a change: what the cache path answers equals what a status without it does. */
  async function afterChange(): Promise<string> {
    const cached = await plainStatus();
    fs.rmSync(answerFile(), { force: true });
    const uncached = await plainStatus();
    expect(cached).not.toContain('MARK');
    expect(cached).toBe(uncached);
    return cached;
  }

  it('cli status changes with params.yaml (size and mtime put back), a code file, the baseline branch and a checked-out lockfile', async () => {
    t = await createPipelineRepo();
    expect((await cli('repro', '--pipeline', BASELINE_PIPELINE)).code).toBe(0);
    t.commit('lock v1');
    t.write('code/train.txt', 'train v2\n');
    expect((await cli('repro', '--pipeline', BASELINE_PIPELINE)).code).toBe(0);
    t.commit('lock v2');
    const upToDate = await plainStatus();
    expect(upToDate).toContain('pipeline: up to date');

    // params.yaml with the same size and mtime: only its ctime (and bytes) tell.
    await cacheAndMark();
    const params = path.join(t.root, 'params.yaml');
    const st = fs.statSync(params, { bigint: true });
    fs.writeFileSync(params, fs.readFileSync(params, 'utf8').replace('seed: 1', 'seed: 2'));
    // To the nanosecond (utimes through Node rounds), with touch from coreutils.
    const ns = String(st.mtimeNs % 1_000_000_000n).padStart(9, '0');
    execFileSync('touch', ['-m', '-d', `@${st.mtimeNs / 1_000_000_000n}.${ns}`, params]);
    const now = fs.statSync(params, { bigint: true });
    expect([now.size, now.mtimeNs, now.ino]).toEqual([st.size, st.mtimeNs, st.ino]);
    expect(await afterChange()).toContain('params data.seed changed');
    fs.writeFileSync(params, fs.readFileSync(params, 'utf8').replace('seed: 2', 'seed: 1'));

    await cacheAndMark();
    t.write('code/evaluate.txt', 'evaluate v2\n');
    expect(await afterChange()).toContain('evaluate: code changed');
    t.write('code/evaluate.txt', 'evaluate v1\n');

    // The gate's baseline is a declared input read from branch dev.
    await cacheAndMark();
    t.git('branch', '-f', 'dev', 'HEAD~1');
    expect(await afterChange()).toContain('baseline dev@');

    t.git('branch', '-D', 'dev');
    expect(await afterChange()).toBe(upToDate);
    await cacheAndMark();
    t.git('checkout', 'HEAD~1', '--', 'artifacts.lock.yaml');
    expect(await afterChange()).toContain('train: code changed');
  });

  it('cli status answers from its cache with a --pipeline module at the repository root, and notices that module change', async () => {
    t = await createPipelineRepo();
    t.write('pipeline.ts', `export { pipeline } from ${JSON.stringify(BASELINE_PIPELINE)};\n`);
    const atRoot = () => cli('status', '--pipeline', 'pipeline.ts');
    expect((await cli('repro', '--pipeline', 'pipeline.ts')).code).toBe(0);
    t.commit('lock');
    await new Promise((res) => setTimeout(res, 1100));
    expect((await atRoot()).code).toBe(0);
    const body = JSON.parse(fs.readFileSync(answerFile(), 'utf8'));
    body.stages[0].reason = 'MARK';
    body.stale = [body.stages[0].name];
    body.stages[0].action = 'run';
    fs.writeFileSync(answerFile(), JSON.stringify(body));
    expect((await atRoot()).stdout).toContain('MARK');
    t.write('pipeline.ts', `// edited\nexport { pipeline } from ${JSON.stringify(BASELINE_PIPELINE)};\n`);
    const after = await atRoot();
    expect(after.code).toBe(0);
    expect(after.stdout).not.toContain('MARK');
  });

  it('cli status ignores a corrupt cache file', async () => {
    t = await createPipelineRepo();
    expect((await cli('repro', '--pipeline', BASELINE_PIPELINE)).code).toBe(0);
    const good = await plainStatus();
    for (const junk of ['', '{"v":1', '{"v":1,"key":"x","roots":[],"sigs":{}}', 'null', '[1,2]']) {
      fs.mkdirSync(path.dirname(answerFile()), { recursive: true });
      fs.writeFileSync(answerFile(), junk);
      expect(await plainStatus()).toBe(good);
    }
    // A cache of the right shape whose stages are garbled is not taken either.
    await cacheAndMark();
    const body = JSON.parse(fs.readFileSync(answerFile(), 'utf8'));
    body.stages = [{ name: 1 }];
    fs.writeFileSync(answerFile(), JSON.stringify(body));
    expect(await plainStatus()).toBe(good);
  });
});
