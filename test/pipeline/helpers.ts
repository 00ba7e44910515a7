/** Shared set-up for runner tests: a temp git repo with the fixture pipeline's inputs. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { loadParams } from '../../lib/params.ts';
import { memoryOutput } from '../../lib/output.ts';
import { reproduce, type RunReport, type ReproOptions } from '../../lib/pipeline/run.ts';
import { pipeline } from './fixtures/pipeline.ts';

export const FIXTURE_PIPELINE = fileURLToPath(new URL('./fixtures/pipeline.ts', import.meta.url));

export const BASE_PARAMS = 'data:\n  seed: 1\ntrain:\n  lr: 0.01\n  epochs: 3\n';

/** A temp repo with params, input data and the code files the fixture stages fingerprint. */
export async function createPipelineRepo(params = BASE_PARAMS): Promise<TmpRepo> {
  return createTmpRepo({
    'params.yaml': params,
    'data/input.txt': 'alpha\nbeta\ngamma\ndelta\n',
    'code/prepare.txt': 'prepare v1\n',
    'code/train.txt': 'train v1\n',
    'code/evaluate.txt': 'evaluate v1\n',
    'code/gate.txt': 'gate v1\n',
    'code/report.txt': 'report v1\n',
    '.gitignore': '/.lockstep/*\n!/.lockstep/config.yaml\n/out/\n/logs/\n',
  });
}

/** Runs the fixture pipeline in-process. */
export async function runFixture(t: TmpRepo, options: Partial<ReproOptions> = {}): Promise<RunReport> {
  const params = loadParams(t.repo);
  return reproduce(t.repo, pipeline(params), { params, out: memoryOutput(), jobs: 2, ...options });
}

/** Stage names in `logs/runs.log`, then clears it. */
export function takeRuns(t: TmpRepo): string[] {
  const file = path.join(t.root, 'logs/runs.log');
  if (!fs.existsSync(file)) return [];
  const runs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  fs.rmSync(file);
  return runs.sort();
}
