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

/** Maps a numeric value into the sampler's internal [0, 1] coordinate (log-aware). */
export function toUnit(d: Extract<Dimension, { type: 'float' | 'int' }>, v: number): number {
  if (d.high === d.low) return 0.5;
  if (d.log) return (Math.log(v) - Math.log(d.low)) / (Math.log(d.high) - Math.log(d.low));
  return (v - d.low) / (d.high - d.low);
}

/** Inverse of `toUnit`, rounded for ints and clamped to the range. */
export function fromUnit(d: Extract<Dimension, { type: 'float' | 'int' }>, u: number): number {
  const c = Math.min(1, Math.max(0, u));
  const v = d.log
    ? Math.exp(Math.log(d.low) + c * (Math.log(d.high) - Math.log(d.low)))
    : d.low + c * (d.high - d.low);
  return d.type === 'int' ? Math.min(d.high, Math.max(d.low, Math.round(v))) : v;
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
