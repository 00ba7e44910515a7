import { describe, expect, it } from 'vitest';
import { metricsTable } from '../../actions/_shared/results.ts';
import { isRunStatus, toStageLines } from '../../actions/_shared/stage.ts';

describe('metricsTable', () => {
  it('metricsTable splits overall metrics from one row per class and drops non-numbers', () => {
    const md = metricsTable({
      accuracy: 0.5,
      'f1.angry': 1,
      'precision.angry': 0.5,
      'f1.sad': 0,
      backend: 'wasm',
    });
    expect(md.split('\n')).toEqual([
      '| metric | value |',
      '| --- | --- |',
      '| accuracy | 0.5000 |',
      '',
      '| class | f1 | precision |',
      '| --- | --- | --- |',
      '| angry | 1 | 0.5000 |',
      '| sad | 0 |  |',
    ]);
  });
});

describe('toStageLines', () => {
  it.each([
    [
      'a plan (repro --dry --json)',
      { stages: [{ name: 'train', action: 'run', reason: 'params train.lr changed' }] },
      'run',
    ],
    [
      'a run report (repro --json)',
      { ok: true, stages: [{ name: 'train', status: 'ran', reason: 'never run' }] },
      'ran',
    ],
    ['a bare list', [{ stage: 'train', run: false, reasons: ['up to date'] }], 'skip'],
    ['stages keyed by name', { stages: { train: { status: 'restored', reason: 'run-cache' } } }, 'restored'],
  ])('toStageLines reads %s', (_what, json, status) => {
    const [line] = toStageLines(json);
    expect(line).toMatchObject({ stage: 'train', status });
    expect(line.reason).toBeTruthy();
  });

  it('toStageLines gives no lines for output that is not a plan', () => {
    expect(toStageLines(undefined)).toEqual([]);
    expect(toStageLines({ message: 'x' })).toEqual([]);
  });

  it.each([
    ['run', true],
    ['ran', true],
    ['skip', false],
    ['skipped', false],
    ['restore', false],
  ])('isRunStatus(%s) is %s', (status, expected) => {
    expect(isRunStatus({ stage: 's', status })).toBe(expected);
  });
});
