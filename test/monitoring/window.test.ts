import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { makeRegistryRepo, type RegistryRepo } from '../promotion/fixture.ts';

let r: RegistryRepo;
const NOW = Date.parse('2026-11-20T12:00:00.000Z');
const iso = (minutesBefore: number) => new Date(NOW - minutesBefore * 60_000).toISOString();

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', r.dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

beforeEach(async () => {
  r = await makeRegistryRepo();
  const edges = Array.from({ length: 21 }, (_, i) => -1 + i * 0.1);
  await mkdir(path.join(r.dir, 'out', 'features'), { recursive: true });
  await writeFile(
    path.join(r.dir, 'out/features/stats.json'),
    JSON.stringify({ f0: { edges, counts: Array(20).fill(10) } }),
  );
  await writeFile(
    path.join(r.dir, 'out/features/index.json'),
    JSON.stringify({ featureNames: ['f0'], labels: ['a', 'b'], splits: { train: { labels: [0, 1] } } }),
  );
  // One prediction a minute for 200 minutes before NOW (a window is (from, to]).
  const logs = path.join(r.dir, '.lockstep', 'logs', 'dev');
  await mkdir(logs, { recursive: true });
  const lines = Array.from({ length: 200 }, (_, i) =>
    JSON.stringify({ time: iso(i + 1), env: 'dev', status: 'ok', label: 'a', summary: [0.1], latencyMs: 2 }),
  );
  await writeFile(path.join(logs, 'predictions-20261120T000000000Z-1-0.jsonl'), lines.join('\n') + '\n');
});
afterEach(async () => {
  await r.cleanup();
});

describe('monitor window', () => {
  const cases: [string, string[], { from: string; to: string; recent: number }][] = [
    ['--window sets the recent window', ['--window', '30m'], { from: iso(30), to: iso(0), recent: 29 }],
    ['--window takes hours and days', ['--window', '2h'], { from: iso(120), to: iso(0), recent: 119 }],
    [
      '--since with --window fixes both ends',
      ['--since', iso(60), '--window', '30m'],
      { from: iso(60), to: iso(30), recent: 30 },
    ],
    ['--since alone runs to --now', ['--since', iso(45)], { from: iso(45), to: iso(0), recent: 44 }],
    [
      '--since takes a span before --now',
      ['--since', '45 minutes ago'],
      { from: iso(45), to: iso(0), recent: 44 },
    ],
  ];
  it.each(cases)('monitor %s', async (_name, args, want) => {
    const res = await cli('monitor', '--env', 'dev', '--now', iso(0), ...args, '--json');
    expect(res.err).toBe('');
    const report = JSON.parse(res.out);
    expect(report.window).toEqual({ from: want.from, to: want.to });
    expect(report.volume.recent).toBe(want.recent);
  });

  it('monitor rejects a malformed --window or --since in one line', async () => {
    const bad = await cli('monitor', '--env', 'dev', '--window', '5x');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--window: not a duration from 1s to 10 years "5x"\. Pass a number and a unit/);
    const late = await cli('monitor', '--env', 'dev', '--now', iso(0), '--since', iso(-5));
    expect(late.code).toBe(2);
    expect(late.err.split('\n')).toHaveLength(1);
    expect(late.err).toMatch(/--since: .* is not before the window's end/);
  });

  // Values Date would stretch into some time ("1" is 2001), spans past what a Date holds, and
  // windows in the future or of no length are usage errors, before anything is read.
  it.each([
    [['--since', '1'], /--since: not a date "1"\. Pass an ISO date/],
    [['--since', 'Tuesday 5'], /--since: not a date "Tuesday 5"\./],
    [['--since', '999999999 years ago'], /--since: not a date "999999999 years ago"\./],
    [['--now', '5'], /--now: not a time "5"\./],
    [['--window', '999999999w'], /--window: not a duration from 1s to 10 years "999999999w"\./],
    [['--window', '0.0001s'], /--window: not a duration from 1s to 10 years "0\.0001s"\./],
    [['--window', '0'], /--window: not a duration/],
    [['--since', '2099-01-01', '--window', '1h'], /--since: "2099-01-01" is not before the window's end/],
  ])('monitor %j is a one-line usage error', async (args, message) => {
    // No training statistics: a flag that parsed would fail on those instead (exit 1).
    await rm(path.join(r.dir, 'out/features/stats.json'));
    const res = await cli('monitor', '--env', 'dev', '--now', iso(0), ...args);
    expect(res.code).toBe(2);
    expect(res.err.split('\n')).toHaveLength(1);
    expect(res.err).toMatch(message);
  });
});
