import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
