import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { flattenMetrics } from '../../lib/pipeline/metrics.ts';
import { renderReport } from '../../lib/report/render.ts';
import { renderSlicesSection, renderSliceTable, sliceRows } from '../../lib/slices/table.ts';
import { readEvalMetrics } from '../../lib/slices/shape.ts';
import { flattenedEvaluateLockfile, recordEvaluate } from '../support/evaluate-lock.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { Cache } from '../../lib/store/cache.ts';

const slice = (n: number, f1: number, lo: number, hi: number) => ({
  n,
  speakers: 1,
  min_size: 20,
  metrics: { f1_macro: f1, accuracy: f1 + 0.05 },
  intervals: { f1_macro: { lo, hi }, accuracy: { lo: lo + 0.05, hi: hi + 0.05 } },
});

const file = (s03: number) => ({
  f1_macro: 0.7,
  accuracy: 0.75,
  intervals: { f1_macro: { lo: 0.6, hi: 0.8 } },
  bootstrap: { resamples: 400, confidence: 0.95, seed: 0 },
  slices: {
    speaker: { S03: slice(35, s03, s03 - 0.1, s03 + 0.1), S08: slice(35, 0.8, 0.7, 0.9) },
    duration: { '<1.5s': slice(6, 0.4, 0.1, 0.7) },
  },
});

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

describe('report slices', () => {
  it('sliceRows lists every slice worst first, with the baseline change and the ungated marked', () => {
    const rows = sliceRows(
      readEvalMetrics(flattenMetrics(file(0.5))),
      readEvalMetrics(flattenMetrics(file(0.6))),
    );
    expect(rows.map((r) => `${r.kind}:${r.slice}`)).toEqual(['duration:<1.5s', 'speaker:S03', 'speaker:S08']);
    expect(rows[0].gated).toBe(false);
    expect(rows[1].metrics.f1_macro.delta).toBeCloseTo(-0.1, 9);
    const md = renderSliceTable(rows, { markdown: true, baseLabel: 'main' });
    expect(md.split('\n')[0]).toBe(
      '| kind | slice | clips | f1_macro | Δ vs main | accuracy | Δ vs main | gated |',
    );
    expect(md.split('\n')[2]).toBe(
      '| duration | <1.5s | 6 | 0.400 [0.100, 0.700] | 0.000 | 0.450 [0.150, 0.750] | 0.000 | no (< 20) |',
    );
    expect(md.split('\n')[3]).toContain('| speaker | S03 | 35 | 0.500 [0.400, 0.600] | −0.100 |');
  });

  it('renderReport shows the slice section after the metrics diff', () => {
    const body = renderReport({ slices: renderSlicesSection(readEvalMetrics(flattenMetrics(file(0.5)))) });
    expect(body).toContain(
      '### Slices (test split, worst first)\n\n| kind | slice | clips | f1_macro | accuracy | gated |',
    );
    expect(body.indexOf('### Metrics diff')).toBeLessThan(body.indexOf('### Slices'));
    expect(body).toContain('95% speaker-clustered bootstrap intervals');
  });

  it('metrics diff keeps slice keys out of the metric table and shows the slice table, worst first', async () => {
    t = await createTmpRepo();
    const lock = (s03: number) => flattenedEvaluateLockfile(file(s03));
    t.write('artifacts.lock.yaml', lock(0.6));
    t.commit('base');
    t.write('artifacts.lock.yaml', lock(0.5));
    const run = async (...args: string[]) => {
      const out = memoryOutput();
      const code = await main(['-C', t!.root, 'metrics', 'diff', ...args], out);
      return { code, stdout: out.stdout.join('\n') };
    };
    const text = await run('--changed');
    expect(text.code).toBe(0);
    expect(text.stdout).not.toMatch(/evaluate\.slices\./);
    expect(text.stdout).toMatch(/slices \(worst first\):\nkind\s+slice\s+clips\s+f1_macro\s+Δ vs HEAD/);
    expect(text.stdout).toMatch(/speaker\s+S03\s+35\s+0\.500 \[0\.400, 0\.600\]\s+−0\.100/);
    const json = JSON.parse((await run('--json')).stdout);
    expect(json.slices.map((r: { slice: string }) => r.slice)).toEqual(['<1.5s', 'S03', 'S08']);
    expect((await run('--no-slices')).stdout).not.toContain('slices');
  });

  it('metrics diff reads the slices from the evaluate out of each revision whose lockfile leaves them out', async () => {
    t = await createTmpRepo();
    // As the runner records evaluate now: the file in the out, its headline in the lockfile.
    const baseOut = await recordEvaluate(t, file(0.6));
    expect(t.read('artifacts.lock.yaml')).not.toMatch(/slices/);
    t.commit('base');
    await recordEvaluate(t, file(0.5));
    const run = async (...args: string[]) => {
      const out = memoryOutput();
      const code = await main(['-C', t!.root, 'metrics', 'diff', ...args], out);
      return { code, stdout: out.stdout.join('\n') };
    };
    const text = await run('--changed');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/slices \(worst first\):\nkind\s+slice\s+clips\s+f1_macro\s+Δ vs HEAD/);
    expect(text.stdout).toMatch(/speaker\s+S03\s+35\s+0\.500 \[0\.400, 0\.600\]\s+−0\.100/);
    const json = JSON.parse((await run('--json')).stdout);
    expect(json.slices.map((r: { slice: string }) => r.slice)).toEqual(['<1.5s', 'S03', 'S08']);

    // The base's out gone from the cache: its column is empty and the output says why.
    fs.rmSync(new Cache(t.repo).objectPath(baseOut.hash));
    const partial = await run();
    expect(partial.code).toBe(0);
    expect(partial.stdout).toMatch(/speaker\s+S03\s+35\s+0\.500 \[0\.400, 0\.600\]/);
    expect(partial.stdout).not.toContain('Δ vs HEAD');
    expect(partial.stdout).toMatch(/\(out\/eval@HEAD: object is missing from the cache .*\)/);
  });

  it('metrics show lists headline metrics and counts the slice and interval keys it leaves out', async () => {
    t = await createTmpRepo();
    t.write('artifacts.lock.yaml', flattenedEvaluateLockfile(file(0.6)));
    const run = async (...args: string[]) => {
      const out = memoryOutput();
      const code = await main(['-C', t!.root, 'metrics', 'show', ...args], out);
      return { code, lines: out.stdout.join('\n').split('\n') };
    };
    const all = Object.keys(flattenMetrics(file(0.6)));
    const detail = all.filter((k) => /^(slices|intervals|bootstrap)\./.test(k)).length;
    const shown = await run();
    expect(shown.code).toBe(0);
    expect(shown.lines).toEqual([
      'evaluate.accuracy  0.75',
      'evaluate.f1_macro  0.7',
      `(${detail} slice and interval keys not listed: --all lists them, lockstep metrics diff tables the slices)`,
    ]);
    expect((await run('--all')).lines).toHaveLength(all.length);
    expect(Object.keys(JSON.parse((await run('--json')).lines.join('\n')))).toHaveLength(all.length);
  });
  it('metrics show --all and --json list the slices from the evaluate out as an older lockfile had them', async () => {
    t = await createTmpRepo();
    const out = await recordEvaluate(t, file(0.6));
    t.commit('new-style lockfile');
    const run = async (...args: string[]) => {
      const io = memoryOutput();
      const code = await main(['-C', t!.root, 'metrics', 'show', ...args], io);
      return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') };
    };
    const every = Object.fromEntries(
      Object.entries(flattenMetrics(file(0.6))).map(([k, v]) => [`evaluate.${k}`, v]),
    );
    for (const rev of ['workspace', 'HEAD']) {
      expect(JSON.parse((await run(rev, '--json')).stdout)).toEqual(every);
      const all = await run(rev, '--all');
      expect(all.stdout.split('\n')).toHaveLength(Object.keys(every).length);
      expect(all.stdout).toContain('evaluate.slices.speaker.S03.metrics.f1_macro  0.6');
    }
    // The default listing reads no out: the lockfile's headline keys only.
    expect((await run()).stdout).not.toContain('evaluate.slices.');

    // The out gone from the cache: the lockfile's keys, and a note on stderr saying why.
    fs.rmSync(new Cache(t.repo).objectPath(out.hash));
    const partial = await run('HEAD', '--json');
    expect(partial.code).toBe(0);
    expect(Object.keys(JSON.parse(partial.stdout)).some((k) => k.includes('slices'))).toBe(false);
    expect(partial.stderr).toMatch(
      /^\(out\/eval@HEAD: object is missing from the cache .*lockstep pull.*\)$/,
    );
  });
});
