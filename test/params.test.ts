import { afterEach, describe, expect, it } from 'vitest';
import { getParam, loadParams, paramsAtRev, parseParams } from '../lib/params.ts';
import { ConfigError } from '../lib/errors.ts';
import { createTmpRepo, type TmpRepo } from './support/tmp-repo.ts';

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

describe('params', () => {
  it.each([
    ['train:\n  epochs: ten\n', 'params.yaml:2: train.epochs: expected integer, got "ten". Fix the value.'],
    ['train:\n  epochs: 2.5\n', 'params.yaml:2: train.epochs: expected integer, got 2.5. Fix the value.'],
    ['train:\n  lr: fast\n', 'params.yaml:2: train.lr: expected number, got "fast". Fix the value.'],
    ['train:\n  lr: 3\n', 'params.yaml:2: train.lr: must be <= 1, got 3. Fix the value.'],
    [
      'train:\n  arch: rnn\n',
      'params.yaml:2: train.arch: expected one of "mlp", "cnn1d", got "rnn". Fix the value.',
    ],
    [
      'train:\n  epoch: 3\n',
      /^params\.yaml:2: train\.epoch: unknown key "epoch"\. Remove it or check the spelling \(known: arch, epochs/,
    ],
    ['trian:\n  epochs: 3\n', /^params\.yaml:1: trian: unknown key "trian"\./],
    ['train: [1, 2\n', /^params\.yaml:\d+: invalid YAML: /],
    ['- 1\n', /^params\.yaml: expected a mapping of sections/],
    [
      'evaluate:\n  bootstrap: { resamples: 1 }\n',
      'params.yaml:2: evaluate.bootstrap.resamples: too few resamples for a percentile interval at this confidence; use 0 (no intervals) or at least 2 / (1 - confidence) (40 at 0.95), got 1. Fix the value.',
    ],
    [
      'evaluate:\n  bootstrap: { resamples: 100, confidence: 0.99 }\n',
      /^params\.yaml:2: evaluate\.bootstrap\.resamples: too few resamples .* got 100\. Fix the value\.$/,
    ],
  ])('params parse rejects %j with a one-line error', (text, expected) => {
    let caught: unknown;
    try {
      parseParams(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    if (typeof expected === 'string') expect((caught as Error).message).toBe(expected);
    else expect((caught as Error).message).toMatch(expected);
    expect((caught as Error).message).not.toContain('\n');
  });

  it('params parse fills defaults for missing keys and files', async () => {
    const p = parseParams('train:\n  epochs: 5\n');
    expect(p.train.epochs).toBe(5);
    expect(p.train.lr).toBe(0.003);
    expect(p.data.source).toBe('demo');
    t = await createTmpRepo();
    expect(loadParams(t.repo)).toEqual(parseParams(''));
  });

  it('params bootstrap accepts 0 resamples and the fewest a 95% interval needs', () => {
    expect(parseParams('evaluate:\n  bootstrap: { resamples: 0 }\n').evaluate.bootstrap.resamples).toBe(0);
    expect(parseParams('evaluate:\n  bootstrap: { resamples: 40 }\n').evaluate.bootstrap.resamples).toBe(40);
  });

  it('params getParam reads dotted keys', () => {
    const p = parseParams('train:\n  lr: 0.02\n');
    expect(getParam(p, 'train.lr')).toBe(0.02);
    expect(getParam(p, 'train.nope')).toBeUndefined();
    expect(getParam(p, 'gate.thresholds.0.metric')).toBe('f1_macro');
  });

  it('params at a revision come from git objects, not the workspace', async () => {
    t = await createTmpRepo({ 'params.yaml': 'train:\n  lr: 0.01\n' });
    const first = t.git('rev-parse', 'HEAD');
    t.write('params.yaml', 'train:\n  lr: 0.02\n');
    const second = t.commit('lr');
    t.write('params.yaml', 'train:\n  lr: 0.03\n');
    expect((await paramsAtRev(t.repo, first)).train.lr).toBe(0.01);
    expect((await paramsAtRev(t.repo, second)).train.lr).toBe(0.02);
    expect(loadParams(t.repo).train.lr).toBe(0.03);
    t.write('params.yaml', 'train:\n  lr: bad\n');
    t.commit('bad');
    await expect(paramsAtRev(t.repo, 'HEAD')).rejects.toThrow(
      'params.yaml@HEAD:2: train.lr: expected number, got "bad"',
    );
  });
});
