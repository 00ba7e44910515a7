import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { changedParamValues, setParamsValues } from '../../lib/experiments/params-edit.ts';

const TEXT = [
  '# top comment',
  'train:',
  '  lr: 0.01    # aligned comment',
  "  arch: 'mlp'",
  '  epochs: 3',
  'gate:',
  '  thresholds:',
  '    - { metric: f1_macro,  min: 0.5 }',
  '',
  'monitor: {window_hours: 24}',
  '',
].join('\n');

describe('setParamsValues', () => {
  it.each([
    ['a number keeps the comment and alignment', { 'train.lr': 0.02 }, ['  lr: 0.02    # aligned comment']],
    ['a string keeps its quotes', { 'train.arch': 'cnn1d' }, ["  arch: 'cnn1d'"]],
    ['a string that reads as a number is quoted', { 'train.epochs': '5' }, ['  epochs: "5"']],
    ['a value in a flow mapping', { 'monitor.window_hours': 12 }, ['monitor: {window_hours: 12}']],
  ])('setParamsValues: %s, every other line unchanged', (_name, values, changed) => {
    const out = setParamsValues(TEXT, values);
    const before = TEXT.split('\n');
    const after = out.split('\n');
    expect(after).toHaveLength(before.length);
    const diff = after.filter((line, i) => line !== before[i]);
    expect(diff).toEqual(changed);
    for (const [k, v] of Object.entries(values))
      expect(k.split('.').reduce((o: any, p) => o[p], parse(out))).toEqual(v);
  });

  it('setParamsValues adds a key that does not exist yet and keeps the comments', () => {
    const out = setParamsValues(TEXT, { 'train.units': 64 });
    expect(parse(out).train.units).toBe(64);
    expect(out).toContain('# aligned comment');
    expect(out).toContain('# top comment');
  });

  it('changedParamValues lists changed leaves, lists as one leaf, and removed keys as undefined', () => {
    expect(
      changedParamValues(
        { train: { lr: 0.01, epochs: 3, old: 1 }, tags: [1, 2] },
        { train: { lr: 0.02, epochs: 3 }, tags: [1, 3] },
      ),
    ).toEqual({ 'train.lr': 0.02, 'train.old': undefined, tags: [1, 3] });
  });
});
