/**
 * Speaker-independent train/validation/test split: every speaker's files go to one split, so the
 * test metrics measure generalization to unseen voices. Speakers are ordered by a seeded hash
 * of their id (not a shuffle), so adding a speaker moves at most a few others.
 */
import { createHash } from 'node:crypto';

export type SplitName = 'train' | 'validation' | 'test';
export type Splits = Record<SplitName, string[]>;

export interface SplitOptions {
  /** Fraction of speakers for training (default 0.6). */
  train?: number;
  /** Fraction of speakers for validation (default 0.2); test gets the rest. */
  validation?: number;
  /** Seed of the hash order (default 13). */
  seed?: number;
}

/** Orders speakers by sha256(seed:speaker) — deterministic and independent of input order. */
function hashOrder(speakers: string[], seed: number): string[] {
  const key = (s: string): string => createHash('sha256').update(`${seed}:${s}`).digest('hex');
  return [...new Set(speakers)]
    .map((s) => [key(s), s] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, s]) => s);
}

/**
 * Splits speakers. With 3 or more speakers every split gets at least one; with 2, train and test
 * get one each; with 1, everything is training data.
 */
export function splitSpeakers(speakers: string[], options: SplitOptions = {}): Splits {
  const order = hashOrder(speakers, options.seed ?? 13);
  const n = order.length;
  const trainFrac = options.train ?? 0.6;
  const valFrac = options.validation ?? 0.2;
  let nVal: number;
  let nTest: number;
  if (n >= 3) {
    nVal = Math.max(1, Math.round(n * valFrac));
    nTest = Math.max(1, Math.round(n * Math.max(0, 1 - trainFrac - valFrac)));
    while (n - nVal - nTest < 1) {
      if (nVal >= nTest && nVal > 1) nVal--;
      else nTest--;
    }
  } else {
    nVal = 0;
    nTest = n === 2 ? 1 : 0;
  }
  const sorted = (xs: string[]): string[] => [...xs].sort();
  return {
    train: sorted(order.slice(0, n - nVal - nTest)),
    validation: sorted(order.slice(n - nVal - nTest, n - nTest)),
    test: sorted(order.slice(n - nTest)),
  };
}
