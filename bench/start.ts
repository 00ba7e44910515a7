/**
 * `npm start` end to end: a fresh clone of HEAD (no cache, no outputs) runs the whole pipeline on
 * the embedded default (cold), then again with nothing changed (warm), then after changing
 * `train.epochs` (only train, evaluate and gate run).
 *
 * - cold_seconds: the cold run (target < 180 on this machine).
 * - warm_seconds: the second run (target < 5), every stage skipped.
 * - warm_vs_cold: warm / cold (the headline ratio).
 * - epochs_change_seconds and epochs_change_ran: the run after editing train.epochs.
 * - stage_seconds.<stage>: time per stage in the cold run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

function start(dir: string): { seconds: number; stdout: string; code: number } {
  const t0 = performance.now();
  const res = spawnSync(process.execPath, ['bin/lockstep.mjs', 'start'], {
    cwd: dir,
    env: { ...process.env, CI: 'true' },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return { seconds: (performance.now() - t0) / 1000, stdout: res.stdout, code: res.status ?? 1 };
}

function statuses(stdout: string): Record<string, { status: string; seconds?: number }> {
  const out: Record<string, { status: string; seconds?: number }> = {};
  for (const line of stdout.split('\n')) {
    const m = /^\s{2}(\w+)\s+(ran|skipped|restored|failed|not run)\b.*?(?:\((\d+(?:\.\d+)?)s\))?/.exec(line);
    if (m) out[m[1]] = { status: m[2], seconds: m[3] ? Number(m[3]) : undefined };
  }
  return out;
}

export default async function (): Promise<Record<string, number | string>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-start-'));
  try {
    execFileSync('git', ['clone', '-q', ROOT, dir]);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
    const cold = start(dir);
    if (cold.code !== 0) throw new Error(`cold npm start failed:\n${cold.stdout.slice(-2000)}`);
    const warm = start(dir);
    const warmStages = statuses(warm.stdout);
    const params = fs.readFileSync(path.join(dir, 'params.yaml'), 'utf8');
    fs.writeFileSync(
      path.join(dir, 'params.yaml'),
      params.replace(/^(\s+epochs:\s*)(\d+)/m, (_, a, n) => `${a}${Number(n) + 5}`),
    );
    const changed = start(dir);
    const changedStages = statuses(changed.stdout);
    const figures: Record<string, number | string> = {
      cold_seconds: Number(cold.seconds.toFixed(1)),
      warm_seconds: Number(warm.seconds.toFixed(2)),
      warm_vs_cold: Number((warm.seconds / cold.seconds).toFixed(4)),
      warm_all_skipped: Object.values(warmStages).every((s) => s.status === 'skipped') ? 'yes' : 'no',
      epochs_change_seconds: Number(changed.seconds.toFixed(1)),
      epochs_change_ran: Object.entries(changedStages)
        .filter(([, s]) => s.status === 'ran')
        .map(([n]) => n)
        .join(','),
      cores: os.availableParallelism(),
      load_average_1m: Number(os.loadavg()[0].toFixed(1)),
    };
    for (const [name, s] of Object.entries(statuses(cold.stdout)))
      if (s.seconds !== undefined) figures[`stage_seconds.${name}`] = s.seconds;
    const metrics = /evaluate\.accuracy\s+([\d.]+)/.exec(cold.stdout);
    if (metrics) figures.test_accuracy = Number(metrics[1]);
    const f1 = /evaluate\.f1_macro\s+([\d.]+)/.exec(cold.stdout);
    if (f1) figures.test_f1_macro = Number(f1[1]);
    return figures;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
