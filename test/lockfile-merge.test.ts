import { describe, expect, it } from 'vitest';
import { BOTH_SIDES_CHANGED, mergeLockfiles } from '../lib/lockfile-merge.ts';
import { parseLockfile, serializeLockfile } from '../lib/lockfile.ts';
import { splitConflictMarkers } from '../lib/lockfile-conflict.ts';
import type { ArtifactRef, LockEntry, Lockfile } from '../lib/types.ts';

const h = (c: string) => c.repeat(64);
const ref = (path: string, hash: string): ArtifactRef => ({ path, hash: h(hash), size: 1, nfiles: 1 });

/** prepare (data/in → out/prep) → train (out/prep → out/model) → evaluate (out/model → out/eval). */
function lock(v: { prep?: string; train?: string; evaluate?: string; data?: string } = {}): Lockfile {
  const p = v.prep ?? '1';
  const t = v.train ?? '2';
  const e = v.evaluate ?? '3';
  const entry = (code: string, deps: ArtifactRef[], outs: ArtifactRef[]): LockEntry => ({
    code: h(code),
    deps,
    params: {},
    outs,
  });
  return {
    schema: 1,
    data: { 'data/in': { hash: h(v.data ?? '0'), size: 1, nfiles: 1 } },
    stages: {
      prepare: entry('a', [ref('data/in', v.data ?? '0')], [ref('out/prep', p)]),
      train: entry('b', [ref('out/prep', p)], [ref('out/model', t)]),
      evaluate: entry('c', [ref('out/model', t)], [ref('out/eval', e)]),
    },
  };
}

describe('mergeLockfiles', () => {
  it.each([
    ['changed on one side only: taken', lock(), lock({ evaluate: '4' }), lock(), [], '4'],
    ['changed on the other side only: taken', lock(), lock(), lock({ evaluate: '4' }), [], '4'],
    [
      'changed on both sides to the same result: no conflict',
      lock(),
      lock({ evaluate: '4' }),
      lock({ evaluate: '4' }),
      [],
      '4',
    ],
    [
      'changed on both sides differently: dropped, stale',
      lock(),
      lock({ evaluate: '4' }),
      lock({ evaluate: '5' }),
      [{ stage: 'evaluate', reason: BOTH_SIDES_CHANGED }],
      undefined,
    ],
  ])('mergeLockfiles %s', (_name, base, ours, theirs, dropped, evalHash) => {
    const m = mergeLockfiles(base, ours, theirs);
    expect(m.dropped).toEqual(dropped);
    expect(m.lockfile.stages.evaluate?.outs[0]!.hash).toBe(evalHash === undefined ? undefined : h(evalHash));
    expect(m.lockfile.stages.prepare).toEqual(base.stages.prepare);
    // The result is always a lockfile lockstep can read back.
    expect(parseLockfile(serializeLockfile(m.lockfile))).toEqual(m.lockfile);
  });

  it('mergeLockfiles drops the stages downstream of a dropped entry', () => {
    const m = mergeLockfiles(
      lock(),
      lock({ train: '4', evaluate: '5' }),
      lock({ train: '6', evaluate: '7' }),
    );
    expect(m.dropped).toEqual([
      { stage: 'evaluate', reason: BOTH_SIDES_CHANGED },
      { stage: 'train', reason: BOTH_SIDES_CHANGED },
    ]);
    // An upstream entry changed on one side only, downstream unchanged there but changed on the
    // other: the downstream entry was computed from the old upstream, so it goes too.
    const prepOnly = lock({ prep: '8' });
    prepOnly.stages.train = lock().stages.train!; // `repro prepare`: train not re-run yet
    const m2 = mergeLockfiles(lock(), prepOnly, lock({ train: '6', evaluate: '7' }));
    expect(m2.lockfile.stages.prepare!.outs[0]!.hash).toBe(h('8'));
    expect(m2.lockfile.stages.train).toBeUndefined();
    expect(m2.lockfile.stages.evaluate).toBeUndefined();
    expect(m2.lockfile.stale).toEqual({
      train: 'merged: input out/prep changed in the merge',
      evaluate: 'merged: input out/model changed in the merge',
    });
  });

  it('mergeLockfiles keeps a chain computed together on one side', () => {
    const m = mergeLockfiles(lock(), lock({ prep: '8', train: '9', evaluate: '4' }), lock());
    expect(m.dropped).toEqual([]);
    expect(m.lockfile).toEqual(lock({ prep: '8', train: '9', evaluate: '4' }));
  });

  it('mergeLockfiles: tracked data changed on both sides is a conflict, and its consumers are dropped', () => {
    const m = mergeLockfiles(lock(), lock({ data: '4' }), lock({ data: '5' }));
    expect(m.dataConflicts).toEqual([{ path: 'data/in' }]);
    expect(m.lockfile.data['data/in']).toBeUndefined();
    expect(Object.keys(m.lockfile.stages)).toEqual([]);
    expect(m.lockfile.stale).toEqual({
      prepare: BOTH_SIDES_CHANGED,
      train: 'merged: input out/prep changed in the merge',
      evaluate: 'merged: input out/model changed in the merge',
    });
    // Data re-added on one side (`lockstep add`, no repro), prepare re-run on the other with the
    // old data: that prepare entry describes data the merge no longer holds, so it goes.
    const added = lock();
    added.data['data/in'] = { hash: h('4'), size: 1, nfiles: 1 };
    const m2 = mergeLockfiles(lock(), added, lock({ prep: '8' }));
    expect(m2.dataConflicts).toEqual([]);
    expect(m2.lockfile.data['data/in']!.hash).toBe(h('4'));
    expect(m2.lockfile.stale).toEqual({
      prepare: 'merged: input data/in changed in the merge',
      train: 'merged: input out/prep changed in the merge',
      evaluate: 'merged: input out/model changed in the merge',
    });
  });

  it('mergeLockfiles without a base counts every difference as both sides', () => {
    const m = mergeLockfiles(undefined, lock({ evaluate: '4' }), lock());
    expect(m.dropped).toEqual([{ stage: 'evaluate', reason: BOTH_SIDES_CHANGED }]);
    expect(m.lockfile.stages.train).toEqual(lock().stages.train);
  });

  it('mergeLockfiles: a stage that re-ran on one side clears the stale mark; one left stale stays stale', () => {
    const stale = mergeLockfiles(lock(), lock({ evaluate: '4' }), lock({ evaluate: '5' })).lockfile;
    // Merging the stale result with a side that never touched evaluate keeps it stale...
    const again = mergeLockfiles(lock(), stale, lock());
    expect(again.lockfile.stale).toEqual({ evaluate: BOTH_SIDES_CHANGED });
    expect(again.dropped).toEqual([{ stage: 'evaluate', reason: BOTH_SIDES_CHANGED }]);
    // ...and once evaluate re-ran on that branch, the fresh entry wins against an unchanged side.
    const fixed = mergeLockfiles(stale, lock({ evaluate: '6' }), stale);
    expect(fixed.lockfile.stale).toBeUndefined();
    expect(fixed.lockfile.stages.evaluate!.outs[0]!.hash).toBe(h('6'));
  });
});

describe('serializeLockfile stale', () => {
  it('serializeLockfile keeps a stale mark only for stages without an entry', () => {
    const lf = { ...lock(), stale: { train: BOTH_SIDES_CHANGED, old: BOTH_SIDES_CHANGED } };
    const text = serializeLockfile(lf);
    expect(parseLockfile(text).stale).toEqual({ old: BOTH_SIDES_CHANGED });
    expect(text.trimEnd().split('\n').slice(-2)).toEqual(['stale:', `  old: "${BOTH_SIDES_CHANGED}"`]);
  });
});

describe('splitConflictMarkers', () => {
  it.each([
    [
      'merge style',
      'a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> topic\nd\n',
      { ours: 'a\nb\nd\n', theirs: 'a\nc\nd\n' },
    ],
    [
      'diff3 style',
      'a\n<<<<<<< HEAD\nb\n||||||| base\nx\n=======\nc\n>>>>>>> topic\nd\n',
      { base: 'a\nx\nd\n', ours: 'a\nb\nd\n', theirs: 'a\nc\nd\n' },
    ],
  ])('splitConflictMarkers %s', (_name, text, sides) => {
    expect(splitConflictMarkers(text)).toEqual(sides);
  });
});
