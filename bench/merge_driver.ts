/**
 * merge_driver: the lockfile merge driver as git runs it (a whole `node
 * bin/lockstep-merge-driver.mjs %O %A %B` process) on a lockfile of 12 stages and 40 tracked
 * data paths where both sides changed different stages and one stage on both sides. Baselines
 * in the same run: `git merge-file` on the same three files (what git does without a driver),
 * an empty `node` process (the floor of any Node driver), and the same merge through the full
 * CLI (`lockstep lock merge-driver`), which loads every command module.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { serializeLockfile } from '../lib/lockfile.ts';
import type { LockEntry, Lockfile } from '../lib/types.ts';

const ROUNDS = 7;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const hex = (n: number) => n.toString(16).padStart(64, '0');

function lockfile(changed: Record<string, number>): Lockfile {
  const lf: Lockfile = { schema: 1, data: {}, stages: {} };
  for (let i = 0; i < 40; i++) lf.data[`data/set-${i}`] = { hash: hex(1000 + i), size: 10 * i, nfiles: i };
  for (let s = 0; s < 12; s++) {
    const name = `stage${String(s).padStart(2, '0')}`;
    const v = changed[name] ?? 0;
    const dep = s === 0 ? { path: 'data/set-0', hash: hex(1000), size: 0, nfiles: 0 } : undefined;
    const entry: LockEntry = {
      code: hex(2000 + s),
      deps: dep
        ? [dep]
        : [
            {
              path: `out/s${s - 1}`,
              hash: hex(3000 + (s - 1) * 10 + (changed[`stage${String(s - 1).padStart(2, '0')}`] ?? 0)),
              size: 1,
              nfiles: 1,
            },
          ],
      params: { 'train.lr': 0.01, 'train.epochs': 3 + v },
      outs: [{ path: `out/s${s}`, hash: hex(3000 + s * 10 + v), size: 1, nfiles: 1 }],
      metrics: { accuracy: 0.5 + v / 100 },
    };
    lf.stages[name] = entry;
  }
  return lf;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeProcess(cmd: string, args: string[], before: () => void): number {
  before();
  const t = performance.now();
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8' });
  const s = (performance.now() - t) / 1000;
  if (r.error) throw r.error;
  if (r.stderr.includes('no bundle')) throw new Error(r.stderr.trim());
  return s;
}

export default async function mergeDriver(): Promise<Record<string, number | string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-merge-'));
  try {
    const base = serializeLockfile(lockfile({}));
    const ours = serializeLockfile(lockfile({ stage11: 1, stage05: 1 }));
    const theirs = serializeLockfile(lockfile({ stage11: 2, stage08: 2 }));
    const [O, A, B] = ['base', 'ours', 'theirs'].map((n) => path.join(dir, n));
    fs.writeFileSync(O!, base);
    fs.writeFileSync(B!, theirs);
    const reset = () => fs.writeFileSync(A!, ours);
    const runs = {
      driver: [] as number[],
      cli: [] as number[],
      mergeFile: [] as number[],
      node: [] as number[],
    };
    // One untimed run of each warms tsx's transform cache, as every merge after the first sees it.
    timeProcess(process.execPath, ['bin/lockstep-merge-driver.mjs', O!, A!, B!], reset);
    timeProcess(process.execPath, ['bin/lockstep.mjs', 'lock', 'merge-driver', O!, A!, B!], reset);
    for (let r = 0; r < ROUNDS; r++) {
      runs.node.push(timeProcess(process.execPath, ['-e', '0'], () => {}));
      runs.mergeFile.push(timeProcess('git', ['merge-file', '-q', A!, O!, B!], reset));
      runs.driver.push(timeProcess(process.execPath, ['bin/lockstep-merge-driver.mjs', O!, A!, B!], reset));
      const merged = fs.readFileSync(A!, 'utf8');
      if (!merged.includes('stage11: "merged: both sides changed this stage"'))
        throw new Error('driver did not mark stage11 stale');
      runs.cli.push(
        timeProcess(process.execPath, ['bin/lockstep.mjs', 'lock', 'merge-driver', O!, A!, B!], reset),
      );
    }
    const driver = median(runs.driver);
    return {
      driver_seconds: Number(driver.toFixed(3)),
      ratio_vs_git_merge_file: Number((driver / median(runs.mergeFile)).toFixed(1)),
      ratio_vs_empty_node: Number((driver / median(runs.node)).toFixed(2)),
      ratio_full_cli_vs_driver: Number((median(runs.cli) / driver).toFixed(2)),
      git_merge_file_seconds: Number(median(runs.mergeFile).toFixed(4)),
      empty_node_seconds: Number(median(runs.node).toFixed(3)),
      full_cli_seconds: Number(median(runs.cli).toFixed(3)),
      lockfile_bytes: ours.length,
      rounds: ROUNDS,
      load_average_1m: Number(os.loadavg()[0]!.toFixed(1)),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
