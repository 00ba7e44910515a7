import { describe, expect, it } from 'vitest';
import { keyFraction, oidPrefixAt, planRemaining } from '../../lib/store/gcs-listing.ts';
import { randomOid } from './gcs-helpers.ts';

describe('gcs-listing', () => {
  it.each([
    [0, '00000000'],
    [0.5, '80000000'],
    [0.25, '40000000'],
    [1, 'ffffffff'],
  ])('oidPrefixAt %f is %s', (f, prefix) => {
    expect(oidPrefixAt(f)).toBe(prefix);
  });

  it('keyFraction orders like the oids themselves', () => {
    const oids = Array.from({ length: 200 }, randomOid).sort();
    const fractions = oids.map(keyFraction);
    expect([...fractions].sort((a, b) => a - b)).toEqual(fractions);
    expect(keyFraction('8'.padEnd(64, '0'))).toBe(0.5);
  });

  it('planRemaining asks per object when fewer ids remain than pages', () => {
    // The first page reached 1% of the key space: about 99 more pages to list.
    const after = oidPrefixAt(0.01).padEnd(64, '0');
    const unresolved = Array.from({ length: 50 }, randomOid)
      .filter((o) => o > after)
      .sort();
    expect(planRemaining(after, 1, unresolved, 16)).toBe('ask');
  });

  it('planRemaining splits the rest into ranges that hold every remaining id', () => {
    const after = oidPrefixAt(0.1).padEnd(64, '0');
    const unresolved = Array.from({ length: 9000 }, randomOid)
      .filter((o) => o > after)
      .sort();
    const plan = planRemaining(after, 1, unresolved, 16);
    expect(plan).not.toBe('ask');
    if (plan === 'ask') return;
    // About 9 pages remain: ranges of about two pages each.
    expect(plan).toHaveLength(5);
    expect(plan.flatMap((r) => r.oids)).toEqual(unresolved);
    for (const range of plan) {
      for (const oid of range.oids) {
        expect(oid >= range.from).toBe(true);
        if (range.to) expect(oid < range.to).toBe(true);
      }
    }
    expect(plan[plan.length - 1].to).toBeUndefined();
  });
});
