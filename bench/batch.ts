/**
 * Batch prediction on the demo corpus: the pipeline runs once in a fresh clone of HEAD (for the
 * model), then `lockstep batch-predict` predicts a copy of the 350-clip corpus with one feature
 * worker and with both cores.
 *
 * - files_per_second: with both cores (the headline figure).
 * - speedup_two_cores_vs_one: files/s with 2 workers / files/s with 1 (same run, same files).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

function batch(
  dir: string,
  input: string,
  output: string,
  jobs: number,
): { filesPerSecond: number; predicted: number; failed: number } {
  const res = spawnSync(
    process.execPath,
    [
      'bin/lockstep.mjs',
      'batch-predict',
      '--env',
      'dev',
      '--input',
      input,
      '--output',
      output,
      '--jobs',
      String(jobs),
      '--json',
    ],
    { cwd: dir, encoding: 'utf8', env: { ...process.env, CI: 'true' }, maxBuffer: 64 * 1024 * 1024 },
  );
  if (res.status !== 0) throw new Error(`batch-predict failed: ${res.stderr.slice(-1000)}`);
  const s = JSON.parse(res.stdout);
  return { filesPerSecond: s.filesPerSecond, predicted: s.predicted, failed: s.failed };
}

export default async function (): Promise<Record<string, number | string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-batch-'));
  try {
    execFileSync('git', ['clone', '-q', ROOT, dir]);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    const start = spawnSync(process.execPath, ['bin/lockstep.mjs', 'start'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, CI: 'true' },
    });
    if (start.status !== 0) throw new Error(`npm start failed: ${start.stderr.slice(-1000)}`);
    const corpus = path.join(dir, 'out', 'data', 'demo');
    const runs: Record<number, ReturnType<typeof batch>> = {};
    for (const jobs of [1, 2]) {
      const input = path.join(dir, `in-${jobs}`);
      fs.cpSync(corpus, input, { recursive: true });
      runs[jobs] = batch(dir, input, path.join(dir, `results-${jobs}`), jobs);
    }
    return {
      files_per_second: Number(runs[2].filesPerSecond.toFixed(1)),
      files_per_second_one_worker: Number(runs[1].filesPerSecond.toFixed(1)),
      speedup_two_cores_vs_one: Number((runs[2].filesPerSecond / runs[1].filesPerSecond).toFixed(2)),
      files: runs[2].predicted + runs[2].failed,
      failed: runs[2].failed,
      cores: os.availableParallelism(),
      load_average_1m: Number(os.loadavg()[0].toFixed(1)),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
