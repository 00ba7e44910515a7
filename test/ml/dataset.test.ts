import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConfigProblems } from '../../lib/errors.ts';
import { readFeaturesIndex } from '../../lib/ml/dataset.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-dataset-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('features index', () => {
  it('a malformed index.json reports every problem with its line, not only the first', () => {
    const dir = path.join(tmp, 'two');
    fs.mkdirSync(dir);
    const file = path.join(dir, 'index.json');
    fs.writeFileSync(
      file,
      JSON.stringify(
        { version: 1, featureNames: [], summaryDim: 0, frameDim: 3, frames: 'x', labels: [], splits: {} },
        null,
        2,
      ),
    );
    let err: unknown;
    try {
      readFeaturesIndex(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigProblems);
    expect((err as ConfigProblems).lines).toEqual([
      `${file}:4: summaryDim: must be > 0, got 0. Fix the value, or re-run the featurize stage.`,
      `${file}:6: frames: expected number, got "x". Fix the value, or re-run the featurize stage.`,
    ]);
  });

  it('an index.json that is not JSON is one line', () => {
    const dir = path.join(tmp, 'garbage');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'index.json'), '\u0000\u0001{');
    expect(() => readFeaturesIndex(dir)).toThrow(ConfigError);
    expect(() => readFeaturesIndex(dir)).toThrow(/^[^\n]*index\.json: cannot read features index/);
  });
});
