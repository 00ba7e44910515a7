import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');

/** A deterministic "training" stage, or one that stamps the time (not reproducible). */
function pipelineSource(deterministic: boolean): string {
  return `import fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { StageDef } from '../lib/types.ts';
export function pipeline(params: any): StageDef[] {
  return [
    {
      name: 'train',
      description: 'fits a model',
      code: ['pipe'],
      deps: ['data/input.txt'],
      params: ['train.seed'],
      outs: ['out/model'],
      async run(ctx) {
        const input = fs.readFileSync(ctx.abs('data/input.txt'), 'utf8');
        fs.mkdirSync(ctx.abs('out/model'), { recursive: true });
        const weights = createHash('sha256').update(input + params.train.seed + ${deterministic ? "''" : 'String(process.hrtime.bigint())'}).digest('hex');
        fs.writeFileSync(ctx.abs('out/model/weights.bin'), weights);
      },
    },
  ];
}
`;
}

let dir: string;
let git: SimpleGit;

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

async function commitPipeline(deterministic: boolean): Promise<string> {
  await writeFile(path.join(dir, 'pipe', 'pipeline.ts'), pipelineSource(deterministic));
  const res = await cli('repro', '--pipeline', 'pipe/pipeline.ts');
  expect(res.err).not.toMatch(/lockstep: /);
  expect(res.code).toBe(0);
  await git.add('.');
  await git.commit(`pipeline (${deterministic ? 'seeded' : 'stamped'})`);
  return (await git.revparse(['HEAD'])).trim();
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'lockstep-verify-'));
  git = simpleGit(dir);
  await git.raw(['init', '-q', '-b', 'dev']);
  await git.addConfig('user.email', 'ml@example.com');
  await git.addConfig('user.name', 'ML Engineer');
  await git.addConfig('commit.gpgsign', 'false');
  // The commit carries lockstep itself (as this repository does), so its own code reproduces it.
  for (const d of ['bin', 'lib', 'stages'])
    await cp(path.join(PROJECT, d), path.join(dir, d), { recursive: true });
  await cp(path.join(PROJECT, 'package.json'), path.join(dir, 'package.json'));
  await symlink(path.join(PROJECT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  await writeFile(path.join(dir, '.gitignore'), 'node_modules\n/.lockstep/*\n/out/\n');
  await writeFile(path.join(dir, 'params.yaml'), 'train:\n  seed: 5\n');
  await mkdir(path.join(dir, 'data'));
  await writeFile(path.join(dir, 'data', 'input.txt'), 'the training data\n');
  await mkdir(path.join(dir, 'pipe'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('verify', () => {
  it('verify reproduces a commit bit for bit after the workspace moved on', async () => {
    const seeded = await commitPipeline(true);
    await writeFile(path.join(dir, 'params.yaml'), 'train:\n  seed: 6\n');
    await cli('repro', '--pipeline', 'pipe/pipeline.ts');
    await git.commit('seed 6', ['params.yaml', 'artifacts.lock.yaml']);
    const res = await cli('verify', seeded, '--pipeline', 'pipe/pipeline.ts', '--json');
    expect(res.code).toBe(0);
    const v = JSON.parse(res.out);
    expect(v.commit).toBe(seeded);
    expect(v.reproducible).toBe(true);
    expect(v.outputs).toEqual([expect.objectContaining({ stage: 'train', path: 'out/model', match: true })]);
    // No worktree is left behind.
    expect((await git.raw(['worktree', 'list'])).trim().split('\n')).toHaveLength(1);
  });

  it('verify reports an output that does not reproduce and exits 1', async () => {
    const stamped = await commitPipeline(false);
    const res = await cli('verify', stamped, '--pipeline', 'pipe/pipeline.ts');
    expect(res.code).toBe(1);
    expect(res.out).toMatch(/DIFF\s+train\s+out\/model/);
    expect(res.err).toMatch(/verify .*: out\/model did not reproduce/);
  });
});
