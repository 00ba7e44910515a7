/**
 * cli: whole-process latency of everyday commands, spawned the way a user runs them
 * (`node bin/lockstep.mjs ...` in a fresh clone whose compiled CLI was built as `npm ci` builds
 * it), median of RUNS runs each, against baselines spawned in the same run:
 *
 * - `node_seconds`: a bare `node -e ''` (process start-up alone).
 * - `help_seconds` (target ≤ 0.2) and `help_vs_node`.
 * - `status_10k_seconds` (target ≤ 0.35): `lockstep status` with nothing changed in a repository
 *   tracking 10,000 files (`lockstep add`), and `status_10k_vs_stat_walk` (target ≤ 1.5): against
 *   a bare node process that stat-walks the same 10,000 files.
 * - `read.<command>_seconds` (target ≤ 0.4 each) on the demo repository (a clone that ran
 *   `lockstep start` and committed its lockfile), and `read_max_seconds`, `read_max_vs_node`.
 * - `*_cpu_seconds`: user + system CPU of the same process (less sensitive to a loaded machine).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const RUNS = 7;
const FILES = 10_000;
const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Bench',
  GIT_AUTHOR_EMAIL: 'bench@example.com',
  GIT_COMMITTER_NAME: 'Bench',
  GIT_COMMITTER_EMAIL: 'bench@example.com',
};

interface Sample {
  seconds: number;
  cpu: number;
}

/** Spawns one process and returns its wall time in seconds. */
function once(cmd: string[], cwd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, cmd, {
      cwd,
      env: { ...process.env, ...GIT_ENV, NO_COLOR: '1', CI: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const seconds = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`${cmd.join(' ')}: exit ${code}\n${stderr.slice(-1000)}`));
      resolve(seconds);
    });
  });
}

/** CPU time of one run, measured through the kernel's accounting of the child (getrusage). */
function cpuOnce(cmd: string[], cwd: string): number {
  const out = execFileSync(
    'bash',
    ['-c', 'TIMEFORMAT="%U %S"; { time "$@" >/dev/null 2>/dev/null; } 2>&1', '_', process.execPath, ...cmd],
    { cwd, env: { ...process.env, ...GIT_ENV, NO_COLOR: '1', CI: 'true' }, encoding: 'utf8' },
  );
  const [user, sys] = out.trim().split(/\s+/).map(Number);
  return user + sys;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function measure(cmd: string[], cwd: string): Promise<Sample> {
  await once(cmd, cwd); // warm the page cache; not counted
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    wall.push(await once(cmd, cwd));
    cpu.push(cpuOnce(cmd, cwd));
  }
  return { seconds: median(wall), cpu: median(cpu) };
}

const STAT_WALK = `
const fs = require('node:fs'); const path = require('node:path');
let n = 0;
(function walk(d) { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
  const p = path.join(d, e.name); const st = fs.statSync(p); if (st.isDirectory()) walk(p); else n++; } })(process.argv[1]);
if (n !== ${FILES}) process.exit(3);`;

function r(x: number, digits = 3): number {
  return Number(x.toFixed(digits));
}

export default async function cli(): Promise<Record<string, number | string>> {
  const demo = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-cli-demo-'));
  const big = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-cli-10k-'));
  const figures: Record<string, number | string> = {};
  try {
    // The demo repository: a fresh clone, compiled as npm ci compiles it, that ran the pipeline.
    execFileSync('git', ['clone', '-q', ROOT, demo]);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(demo, 'node_modules'), 'dir');
    execFileSync(process.execPath, ['lib/cli/build.mjs'], { cwd: demo, stdio: 'ignore' });
    const bin = path.join(demo, 'bin', 'lockstep.mjs');
    console.error('bench cli: running the demo pipeline in a fresh clone');
    await once([bin, 'start'], demo);
    execFileSync('git', ['add', 'artifacts.lock.yaml'], { cwd: demo, env: { ...process.env, ...GIT_ENV } });
    execFileSync('git', ['commit', '-q', '--allow-empty', '-m', 'bench: pin the demo model'], {
      cwd: demo,
      env: { ...process.env, ...GIT_ENV },
    });
    // The dev environment's branch pins the same model, so history and registry have an entry.
    execFileSync('git', ['branch', '-f', 'dev', 'HEAD'], { cwd: demo });

    // 10,000 tracked files in another clone, added once; status afterwards has nothing to do.
    execFileSync('git', ['clone', '-q', ROOT, big]);
    for (let d = 0; d < 100; d++) {
      const dir = path.join(big, 'data', `d${String(d).padStart(3, '0')}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let i = 0; i < FILES / 100; i++) fs.writeFileSync(path.join(dir, `f${i}.txt`), `file ${d}/${i}\n`);
    }
    // Out of the hash state's racy window, so the state records every file.
    await new Promise((res) => setTimeout(res, 1100));
    const bigBin = path.join(big, 'bin', 'lockstep.mjs');
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(big, 'node_modules'), 'dir');
    execFileSync(process.execPath, ['lib/cli/build.mjs'], { cwd: big, stdio: 'ignore' });
    await once([bigBin, 'add', 'data'], big);

    const node = await measure(['-e', ''], demo);
    const walk = await measure(['-e', STAT_WALK, path.join(big, 'data')], big);
    const help = await measure([bin, '--help'], demo);
    const status10k = await measure([bigBin, 'status'], big);
    figures.node_seconds = r(node.seconds);
    figures.stat_walk_seconds = r(walk.seconds);
    figures.help_seconds = r(help.seconds);
    figures.help_vs_node = r(help.seconds / node.seconds, 2);
    figures.status_10k_seconds = r(status10k.seconds);
    figures.status_10k_vs_stat_walk = r(status10k.seconds / walk.seconds, 2);
    figures.node_cpu_seconds = r(node.cpu, 2);
    figures.stat_walk_cpu_seconds = r(walk.cpu, 2);
    figures.help_cpu_seconds = r(help.cpu, 2);
    figures.status_10k_cpu_seconds = r(status10k.cpu, 2);

    const reads: Record<string, string[]> = {
      status: ['status'],
      registry_list: ['registry', 'list'],
      params_diff: ['params', 'diff'],
      metrics_diff: ['metrics', 'diff'],
      lineage: ['lineage', 'HEAD'],
      history: ['history', 'dev'],
      exp_show: ['exp', 'show'],
      endpoint_describe: ['endpoint', 'describe', '--env', 'dev'],
    };
    let worst = 0;
    for (const [name, args] of Object.entries(reads)) {
      let s: Sample;
      try {
        s = await measure([bin, ...args], demo);
      } catch (err) {
        // One failing command is reported, not fatal: the others' figures still count.
        figures[`read.${name}_error`] = (err as Error).message.split('\n').slice(0, 2).join(' ');
        continue;
      }
      figures[`read.${name}_seconds`] = r(s.seconds);
      figures[`read.${name}_cpu_seconds`] = r(s.cpu, 2);
      worst = Math.max(worst, s.seconds);
    }
    figures.read_max_seconds = r(worst);
    figures.read_max_vs_node = r(worst / node.seconds, 2);
    figures.runs = RUNS;
    figures.load_average_1m = r(os.loadavg()[0]!, 1);
    return figures;
  } finally {
    fs.rmSync(demo, { recursive: true, force: true });
    fs.rmSync(big, { recursive: true, force: true });
  }
}
