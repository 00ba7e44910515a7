/** Shared set-up for experiment tests: a temp repo running the fixture pipeline with lockstep's own code. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');
export const PIPE = ['--pipeline', 'pipe/pipeline.ts'];

/** Runs the CLI in-process in `root`. */
export async function cliIn(
  root: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', root, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

/** A file at a revision, byte for byte (TmpRepo.git trims). */
export function showAt(root: string, spec: string): string {
  return execFileSync('git', ['show', spec], { cwd: root, encoding: 'utf8' });
}

/** Makes `root` able to run lockstep from its own commit (node_modules is linked, not committed). */
export function linkModules(root: string): void {
  fs.symlinkSync(path.join(PROJECT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
}

/**
 * A temp repo with `params` (train.lr, train.epochs, data.seed), lockstep's bin/lib/stages and the
 * fixture pipeline, run once and committed.
 */
export async function createExperimentRepo(params: string): Promise<TmpRepo> {
  const t = await createTmpRepo({
    'params.yaml': params,
    'data/input.txt': 'alpha\nbeta\ngamma\n',
    'code/prepare.txt': '1',
    'code/train.txt': '1',
    'code/evaluate.txt': '1',
    'code/gate.txt': '1',
    'code/report.txt': '1',
  });
  for (const d of ['bin', 'lib', 'stages'])
    fs.cpSync(path.join(PROJECT, d), path.join(t.root, d), { recursive: true });
  fs.copyFileSync(path.join(PROJECT, 'package.json'), path.join(t.root, 'package.json'));
  linkModules(t.root);
  t.write('.gitignore', '/.lockstep/*\n/out/\n/logs/\nnode_modules\n/remote/\n');
  t.write(
    'pipe/pipeline.ts',
    fs
      .readFileSync(path.join(PROJECT, 'test/pipeline/fixtures/pipeline.ts'), 'utf8')
      .replace('../../../lib/', '../lib/'),
  );
  const r = await cliIn(t.root, 'repro', ...PIPE);
  expect(r.code, r.err).toBe(0);
  t.commit('pipeline');
  return t;
}
