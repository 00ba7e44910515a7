/**
 * exp: `lockstep exp show --json` as a user runs it (a whole `node bin/lockstep.mjs` process,
 * start-up and exit included) on a repository with 1,000 experiments, each with its own
 * params.yaml and lockfile with metrics, as `exp run` records them. The baseline, in the same
 * run, is the same command on a repository with no experiments, so the ratio is the cost of the
 * experiments beyond the fixed start-up. Cold is the first show after the experiments arrived
 * (each commit's params parsed); warm is the next one (params from .lockstep/exp-show-cache.json).
 * Median of 7 rounds, alternating.
 *
 * The experiments are written with one `git fast-import` (1,000 `exp run`s would take hours).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const EXPERIMENTS = 1000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function params(lr: number, units: number): string {
  return `# bench\ntrain:\n  lr: ${lr} # learning rate\n  units: ${units}\n  epochs: 3\n`;
}

function lockfile(i: number, accuracy: number): string {
  const h = (n: number) => (i * 7919 + n).toString(16).padStart(64, '0');
  return [
    'schema: 1',
    'data: {}',
    'stages:',
    '  train:',
    `    code: ${h(1)}`,
    '    deps: []',
    '    params:',
    `      train.lr: ${i}`,
    '    outs:',
    '      - path: out/model',
    `        hash: ${h(2)}`,
    '        size: 10',
    '        nfiles: 2',
    '        dir: true',
    '  evaluate:',
    `    code: ${h(3)}`,
    '    deps: []',
    '    params: {}',
    '    outs:',
    '      - path: out/eval/metrics.json',
    `        hash: ${h(4)}`,
    '        size: 10',
    '        nfiles: 1',
    '    metrics:',
    `      accuracy: ${accuracy}`,
    `      f1_macro: ${accuracy / 2}`,
    '',
  ].join('\n');
}

/** Writes the experiments on top of HEAD with one fast-import stream. */
function writeExperiments(dir: string, base: string, n: number): void {
  const parts: string[] = [];
  const data = (s: string) => `data ${Buffer.byteLength(s)}\n${s}\n`;
  const when = Math.floor(Date.now() / 1000);
  for (let i = 0; i < n; i++) {
    const lr = Number((0.001 + i * 0.0001).toFixed(4));
    const accuracy = Number((0.5 + (i % 97) / 200).toFixed(4));
    const meta = {
      name: `e${i}`,
      kind: 'run',
      overrides: { 'train.lr': lr, 'train.units': 32 + (i % 4) * 32 },
      metrics: { accuracy, f1_macro: accuracy / 2 },
      status: 'ok',
      created: new Date().toISOString(),
    };
    parts.push(
      `commit refs/exps/e${i}\n`,
      `committer Bench <bench@example.com> ${when + i} +0000\n`,
      data(`exp: e${i}\n\n${JSON.stringify(meta, null, 2)}\n`),
      `from ${base}\n`,
      `M 100644 inline params.yaml\n`,
      data(params(lr, 32 + (i % 4) * 32)),
      `M 100644 inline artifacts.lock.yaml\n`,
      data(lockfile(i, accuracy)),
      '\n',
    );
  }
  execFileSync('git', ['fast-import', '--quiet'], { cwd: dir, input: parts.join('') });
}

export function repoWith(n: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-exp-'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  git('config', 'user.name', 'Bench');
  git('config', 'user.email', 'bench@example.com');
  fs.writeFileSync(path.join(dir, 'params.yaml'), params(0.01, 64));
  fs.writeFileSync(path.join(dir, 'artifacts.lock.yaml'), lockfile(0, 0.9));
  git('add', '-A');
  git('commit', '-q', '-m', 'base');
  if (n > 0) writeExperiments(dir, git('rev-parse', 'HEAD'), n);
  return dir;
}

function show(dir: string): { seconds: number; rows: number } {
  const t = performance.now();
  const res = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'lockstep.mjs'), 'exp', 'show', '--json'], {
    cwd: dir,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  const seconds = (performance.now() - t) / 1000;
  if (res.status !== 0) throw new Error(`exp show failed: ${res.stderr.slice(-500)}`);
  return { seconds, rows: JSON.parse(res.stdout).rows.length };
}

export default async function exp(): Promise<Record<string, number | string>> {
  const many = repoWith(EXPERIMENTS);
  const none = repoWith(0);
  try {
    const ours: number[] = [];
    const cold: number[] = [];
    const base: number[] = [];
    const cache = path.join(many, '.lockstep', 'exp-show-cache.json');
    for (let r = 0; r < ROUNDS; r++) {
      // Cold: the first show after the experiments arrived (no params cache yet); warm: the next.
      fs.rmSync(cache, { force: true });
      for (const list of [cold, ours]) {
        const a = show(many);
        if (a.rows !== EXPERIMENTS + 2) throw new Error(`expected ${EXPERIMENTS + 2} rows, got ${a.rows}`);
        list.push(a.seconds);
      }
      base.push(show(none).seconds);
    }
    const seconds = median(ours);
    const coldSeconds = median(cold);
    const baseline = median(base);
    return {
      exp_show_1000_seconds: Number(seconds.toFixed(3)),
      exp_show_1000_cold_seconds: Number(coldSeconds.toFixed(3)),
      exp_show_0_seconds: Number(baseline.toFixed(3)),
      ratio_vs_no_experiments: Number((seconds / baseline).toFixed(2)),
      cold_ratio_vs_no_experiments: Number((coldSeconds / baseline).toFixed(2)),
      within_1s: seconds <= 1 ? 'yes' : 'no',
      experiments: EXPERIMENTS,
      rounds: ROUNDS,
      load_average_1m: Number(os.loadavg()[0]!.toFixed(1)),
    };
  } finally {
    fs.rmSync(many, { recursive: true, force: true });
    fs.rmSync(none, { recursive: true, force: true });
  }
}
