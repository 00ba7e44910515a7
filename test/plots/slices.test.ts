/**
 * Slice rows read from evaluate's metrics.json shape (lib/slices/shape.ts): the nested file and
 * the lockfile's flattened keys read the same, the worst slice is the worst one the gate judges,
 * and a `slices` of another shape is an error naming the file.
 */
import { describe, expect, it } from 'vitest';
import { parseSlices, worstSlice } from '../../lib/plots/slices.ts';
import { renderHeadline } from '../../lib/report/headline.ts';
import { evalMetricsSchema, type EvalMetricsFile } from '../../lib/slices/shape.ts';

const slice = (n: number, f1: number) => ({
  n,
  speakers: 1,
  min_size: 20,
  metrics: { f1_macro: f1, accuracy: f1 + 0.05, mcc: f1 - 0.1, 'f1.angry': f1 },
  intervals: { f1_macro: { lo: f1 - 0.1, hi: f1 + 0.1 } },
});

const FILE: EvalMetricsFile = evalMetricsSchema.parse({
  accuracy: 0.8,
  f1_macro: 0.78,
  slices: {
    speaker: { S01: slice(35, 0.7), S02: slice(4, 0.1), S03: slice(30, 0.55) },
    gender: { female: slice(60, 0.8) },
  },
});

/** The file as the lockfile records it: dotted keys. */
function flatten(v: unknown, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  if (typeof v === 'number') out[prefix] = v;
  else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) flatten(x, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

describe('plots slices', () => {
  it('slices reads the nested file and the lockfile keys alike, headline metrics only', () => {
    const rows = parseSlices(FILE);
    expect(rows).toHaveLength(8);
    expect(rows[0]).toMatchObject({
      slice: 'speaker=S01',
      metric: 'f1_macro',
      value: 0.7,
      n: 35,
      gated: true,
    });
    expect(rows[0]!.interval?.lo).toBeCloseTo(0.6);
    expect(rows.find((r) => r.slice === 'speaker=S02')?.gated).toBe(false);
    const sort = (r: typeof rows) =>
      [...r].sort((a, b) => (a.slice + a.metric).localeCompare(b.slice + b.metric));
    expect(sort(parseSlices(flatten(FILE)))).toEqual(sort(rows));
  });

  it('slices worst is the worst gated slice; a tiny slice only when none is gated', () => {
    expect(worstSlice(parseSlices(FILE))?.slice).toBe('speaker=S03');
    const tiny = parseSlices({ slices: { speaker: { S02: slice(4, 0.1), S04: slice(5, 0.3) } } });
    expect(worstSlice(tiny)).toMatchObject({ slice: 'speaker=S02', gated: false });
    expect(renderHeadline({ head: { label: 'head', metrics: {}, slices: tiny } })).toContain(
      '0.1 (speaker=S02, 4 clips, below min_size)',
    );
  });

  it('slices of another shape name the file', () => {
    expect(parseSlices({ f1_macro: 0.5 })).toEqual([]);
    expect(() =>
      parseSlices({ slices: { speaker: { S01: { f1_macro: 0.4 } } } }, 'out/eval/metrics.json@main'),
    ).toThrow(/^out\/eval\/metrics\.json@main: slices\.speaker\.S01\.n: /);
  });
});
