import { describe, expect, it } from 'vitest';
import { diffMetrics, diffParams, renderDiffTable } from '../../lib/pipeline/diff.ts';

describe('diff', () => {
  it('diffParams lists changed dotted keys with numeric deltas', () => {
    const rows = diffParams(
      { train: { lr: 0.01, epochs: 3, arch: 'mlp' }, gate: { thresholds: [{ min: 1 }] } },
      { train: { lr: 0.02, epochs: 3, arch: 'cnn1d', units: 8 }, gate: { thresholds: [{ min: 2 }] } },
    );
    expect(rows.map((r) => r.key)).toEqual(['gate.thresholds', 'train.arch', 'train.lr', 'train.units']);
    expect(rows.find((r) => r.key === 'train.lr')!.delta).toBeCloseTo(0.01);
    expect(rows.find((r) => r.key === 'train.units')!.old).toBeUndefined();
    expect(diffParams({ a: 1 }, { a: 1 })).toEqual([]);
    expect(diffParams({ a: 1 }, { a: 1 }, { all: true })).toHaveLength(1);
  });

  it('diffMetrics computes delta and percent', () => {
    const rows = diffMetrics({ acc: 0.5, loss: 2, gone: 1 }, { acc: 0.6, loss: 2, added: 3 });
    expect(rows.map((r) => r.key)).toEqual(['acc', 'added', 'gone', 'loss']);
    const acc = rows[0]!;
    expect(acc.delta).toBeCloseTo(0.1);
    expect(acc.pct).toBeCloseTo(20);
    expect(rows[1]!.delta).toBeUndefined();
    expect(diffMetrics({ a: 1 }, { a: 1 }, { all: false })).toEqual([]);
  });

  it('renderDiffTable renders aligned text and Markdown', () => {
    const rows = diffMetrics({ acc: 0.5 }, { acc: 0.75 });
    const text = renderDiffTable(rows, { labels: ['HEAD', 'workspace'], keyHeader: 'metric' });
    expect(text.split('\n')).toEqual([
      'metric  HEAD  workspace  delta       %',
      'acc      0.5       0.75  +0.25  +50.0%',
    ]);
    const md = renderDiffTable(rows, { markdown: true });
    expect(md.split('\n')).toEqual([
      '| key | old | new | delta | % |',
      '|---|---:|---:|---:|---:|',
      '| acc | 0.5 | 0.75 | +0.25 | +50.0% |',
    ]);
    expect(renderDiffTable([], {})).toBe('no changes');
  });
});
