/**
 * Search spaces for tuning: the `tune.space` section of params.yaml maps a dotted params key to
 * a float or int range (optionally log-scaled) or a list of choices. One schema parses it.
 */
import type { z } from 'zod';
import { dimensionSchema } from '../params-schema.ts';

// The schema is part of params.yaml's one schema (lib/params-schema.ts); the tuner reads its types.
export { dimensionSchema };

export type Dimension = z.infer<typeof dimensionSchema>;
export type SearchSpace = Record<string, Dimension>;
export type Assignment = Record<string, string | number | boolean>;

type NumericDimension = Extract<Dimension, { type: 'float' | 'int' }>;

/**
 * The interval the sampler works in for a numeric dimension, before scaling to [0, 1]: the
 * range itself (its logarithm when log-scaled), widened by half a step on each side for ints so
 * that every integer, the end values included, owns a cell of the same width (as Optuna does).
 */
function span(d: NumericDimension): [number, number] {
  const lo = d.type === 'int' ? d.low - 0.5 : d.low;
  const hi = d.type === 'int' ? d.high + 0.5 : d.high;
  return d.log ? [Math.log(lo), Math.log(hi)] : [lo, hi];
}

/** Maps a numeric value into the sampler's internal [0, 1] coordinate (log- and int-aware). */
export function toUnit(d: NumericDimension, v: number): number {
  const [lo, hi] = span(d);
  if (hi === lo) return 0.5;
  const x = d.log ? Math.log(v) : v;
  // A range wider than the largest double (-1e308 to 1e308) is scaled by halves.
  return Number.isFinite(hi - lo) ? (x - lo) / (hi - lo) : (x / 2 - lo / 2) / (hi / 2 - lo / 2);
}

/**
 * Inverse of `toUnit`: rounded for ints, and clamped to [low, high] in VALUE space, so a
 * rounding error of `exp` can never put a value outside the range.
 */
export function fromUnit(d: NumericDimension, u: number): number {
  const [lo, hi] = span(d);
  const x = Number.isFinite(hi - lo) ? lo + u * (hi - lo) : lo * (1 - u) + hi * u;
  const raw = d.log ? Math.exp(x) : x;
  const v = d.type === 'int' ? Math.round(raw) : raw;
  return Math.min(d.high, Math.max(d.low, v));
}

/** The [0, 1] cell of an int dimension's value `v` (its rounding interval). */
export function unitCell(d: NumericDimension, v: number): [number, number] {
  const [lo, hi] = span(d);
  if (hi === lo) return [0, 1];
  const f = (x: number) => ((d.log ? Math.log(x) : x) - lo) / (hi - lo);
  return [Math.max(0, f(v - 0.5)), Math.min(1, f(v + 0.5))];
}

/** One string per distinct assignment of `space`'s keys, to spot a repeated one. */
export function assignmentKey(space: SearchSpace, a: Assignment): string {
  return JSON.stringify(Object.keys(space).map((k) => a[k]));
}

/** Whether `a` is one of the space's own assignments: in range, whole ints, listed choices. */
export function containsAssignment(space: SearchSpace, a: Assignment): boolean {
  return Object.entries(space).every(([key, d]) => {
    const v = a[key];
    if (d.type === 'choice') return d.values.includes(v);
    return typeof v === 'number' && v >= d.low && v <= d.high && (d.type === 'float' || Number.isInteger(v));
  });
}

/** How many distinct assignments the space holds: Infinity with any float range wider than a point. */
export function assignmentCount(space: SearchSpace): number {
  let n = 1;
  for (const d of Object.values(space)) {
    if (d.type === 'choice') n *= new Set(d.values).size;
    else if (d.type === 'int') n *= Math.floor(d.high) - Math.ceil(d.low) + 1;
    else if (d.high > d.low) return Infinity;
  }
  return n;
}

/** Checks the space for impossible ranges; returns a one-line problem or undefined. */
export function spaceProblem(space: SearchSpace): string | undefined {
  for (const [key, d] of Object.entries(space)) {
    if (d.type === 'choice') continue;
    if (!(d.high >= d.low)) return `tune.space.${key}: high ${d.high} is below low ${d.low}`;
    if (d.log && d.low <= 0) return `tune.space.${key}: a log scale needs low > 0, got ${d.low}`;
  }
  return undefined;
}
