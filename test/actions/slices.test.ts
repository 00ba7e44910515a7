import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { slicesMarkdown } from '../../actions/_shared/slices.ts';
import { Cache } from '../../lib/store/cache.ts';
import { recordEvaluate } from '../support/evaluate-lock.ts';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';

const slice = (f1: number) => ({
  n: 35,
  speakers: 1,
  min_size: 20,
  metrics: { f1_macro: f1 },
  intervals: { f1_macro: { lo: f1 - 0.1, hi: f1 + 0.1 } },
});
const file = (s03: number) => ({
  f1_macro: 0.7,
  bootstrap: { resamples: 400, confidence: 0.95, seed: 0 },
  slices: { speaker: { S03: slice(s03), S08: slice(0.8) } },
});

let t: TmpRepo | undefined;
afterEach(async () => {
  await t?.cleanup();
  t = undefined;
});

describe('PR report slices', () => {
  it('slicesMarkdown compares with the base out, and says why when the base out cannot be read', async () => {
    t = await createTmpRepo();
    const out = await recordEvaluate(t, file(0.6));
    t.commit('base');
    t.write('out/eval/metrics.json', JSON.stringify(file(0.5)));

    const compared = (await slicesMarkdown(t.root, 'HEAD', 'main'))!;
    expect(compared).toMatch(/Δ vs main/);
    expect(compared).toMatch(/S03.*−0\.100/);
    expect(compared).not.toContain('not compared');

    fs.rmSync(new Cache(t.repo).objectPath(out.hash));
    const alone = (await slicesMarkdown(t.root, 'HEAD', 'main'))!;
    expect(alone).toMatch(/S03/);
    expect(alone).not.toMatch(/Δ vs main/);
    expect(alone).toMatch(
      /\n_Base slices not compared: out\/eval@HEAD: object is missing from the cache "[0-9a-f]{64}"\. Run lockstep pull/,
    );
  });
});
