/**
 * add: the first `lockstep add` as a user runs it (the whole process, spawned from the shell,
 * empty cache and hash state each run) against `cp -a <src> <dst> && sync` of the same bytes in
 * the same run, for 1 GiB in 10,000 files and 1 GiB in 4 files.
 *
 * - `<shape>.add_vs_cp_sync`: median add seconds / median cp+sync seconds (target <= 1.25).
 * - `<shape>.add_seconds`, `<shape>.cp_sync_seconds`: the medians of RUNS spawned runs each.
 * - `<shape>.hardlink_vs_cp_sync`, `<shape>.hardlink_seconds`: the same `add` with
 *   `cache: {type: hardlink}` in `.lockstep/config.yaml` (nothing copied; the bytes are hashed).
 *
 * The two contenders alternate, and before each timed run the previous run's output is deleted
 * and the file system synced (untimed), so neither pays for the other's write-back. The sources
 * stay in the page cache for both (each was just written or read), as they would right after a
 * user produced the data.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const TOTAL = 1 << 30;
const RUNS = Number(process.env.BENCH_ADD_RUNS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Writes `files` files totalling TOTAL bytes of distinct content under `dir`. */
function makeData(dir: string, files: number): void {
  const size = Math.floor(TOTAL / files);
  const perDir = Math.min(files, 100);
  const block = Buffer.allocUnsafe(Math.min(size, 1 << 24));
  randomFillSync(block);
  for (let i = 0; i < files; i++) {
    const sub = path.join(dir, `d${String(Math.floor(i / perDir)).padStart(3, '0')}`);
    fs.mkdirSync(sub, { recursive: true });
    const fd = fs.openSync(path.join(sub, `f${i}.bin`), 'w');
    for (let off = 0; off < size; off += block.length) {
      randomFillSync(block, 0, 64); // distinct content per file and per block, cheap to generate
      fs.writeSync(fd, block, 0, Math.min(block.length, size - off));
    }
    fs.closeSync(fd);
  }
}

function timed(cmd: string, args: string[], cwd: string): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return seconds;
}

function resetAdd(repo: string, config?: string): void {
  for (const p of ['.lockstep', 'artifacts.lock.yaml', '.gitignore'])
    fs.rmSync(path.join(repo, p), { recursive: true, force: true });
  if (config) {
    fs.mkdirSync(path.join(repo, '.lockstep'));
    fs.writeFileSync(path.join(repo, '.lockstep', 'config.yaml'), config);
  }
}

async function measure(files: number): Promise<Record<string, number>> {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-add-'));
  try {
    execFileSync('git', ['init', '-q', repo]);
    makeData(path.join(repo, 'data'), files);
    const add: number[] = [];
    const cp: number[] = [];
    const hardlink: number[] = [];
    const lockstep = [path.join(ROOT, 'bin/lockstep.mjs'), 'add', 'data'];
    for (let run = 0; run < RUNS; run++) {
      fs.rmSync(path.join(repo, 'copy'), { recursive: true, force: true });
      resetAdd(repo);
      execFileSync('sync');
      cp.push(timed('sh', ['-c', 'cp -a data copy && sync'], repo));
      fs.rmSync(path.join(repo, 'copy'), { recursive: true, force: true });
      execFileSync('sync');
      add.push(timed(process.execPath, lockstep, repo));
      resetAdd(repo, 'cache:\n  type: hardlink\n');
      execFileSync('sync');
      hardlink.push(timed(process.execPath, lockstep, repo));
    }
    const lock = fs.readFileSync(path.join(repo, 'artifacts.lock.yaml'), 'utf8');
    if (!lock.includes(`nfiles: ${files}`)) throw new Error(`add recorded the wrong file count:\n${lock}`);
    return {
      add_vs_cp_sync: Number((median(add) / median(cp)).toFixed(2)),
      add_seconds: Number(median(add).toFixed(2)),
      cp_sync_seconds: Number(median(cp).toFixed(2)),
      add_seconds_min: Number(Math.min(...add).toFixed(2)),
      cp_sync_seconds_min: Number(Math.min(...cp).toFixed(2)),
      hardlink_vs_cp_sync: Number((median(hardlink) / median(cp)).toFixed(2)),
      hardlink_seconds: Number(median(hardlink).toFixed(2)),
    };
  } finally {
    fs.rmSync(repo, { recursive: true, force: true });
  }
}

export default async function addBench(): Promise<Record<string, number | string>> {
  const figures: Record<string, number | string> = {};
  const load = [os.loadavg()[0]!];
  for (const [shape, files] of [
    ['files_10000', 10_000],
    ['files_4', 4],
  ] as const) {
    for (const [k, v] of Object.entries(await measure(files))) figures[`${shape}.${k}`] = v;
    load.push(os.loadavg()[0]!);
  }
  figures.mib = TOTAL >> 20;
  figures.runs = RUNS;
  figures.cores = os.availableParallelism();
  figures.load_average_1m = Number(Math.max(...load).toFixed(1));
  return figures;
}
