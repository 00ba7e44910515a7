/**
 * Speaker-clustered bootstrap: a resample draws speakers with replacement, then, within each
 * drawn speaker, that speaker's clips with replacement. Clips of one speaker are correlated (one
 * voice, one microphone), so resampling clips alone would give intervals that are too narrow.
 * Seeded (lib/rng.ts), so the same predictions and seed always give the same intervals.
 */
import { createHash } from 'node:crypto';
import { createRng, type Rng } from '../rng.ts';
import type { Interval } from './shape.ts';
import type { Scorer } from './scorer.ts';

export interface BootstrapOptions {
  /** Resamples (0: no intervals). */
  resamples: number;
  /** Interval coverage, e.g. 0.95. */
  confidence: number;
  /** Seed; each slice derives its own stream from it and the slice's name. */
  seed: number;
}

/** A 32-bit seed for one named stream of `seed`, so adding a slice never shifts another's draws. */
export function streamSeed(seed: number, name: string): number {
  return createHash('sha256').update(`${seed}:${name}`).digest().readUInt32LE(0);
}

/**
 * Groups positions `0..m-1` by speaker, in first-seen order (the order of the clips, which is
 * fixed by the features index), so the draws do not depend on hash iteration order.
 */
export function clusterBy(speakers: readonly string[]): Int32Array[] {
  const groups = new Map<string, number[]>();
  speakers.forEach((s, i) => {
    const g = groups.get(s);
    if (g) g.push(i);
    else groups.set(s, [i]);
  });
  return [...groups.values()].map((g) => Int32Array.from(g));
}

/** One resample as clip counts: speakers with replacement, then clips within each. */
export function resampleWeights(clusters: Int32Array[], m: number, rng: Rng): Float64Array {
  const w = new Float64Array(m);
  const g = clusters.length;
  for (let d = 0; d < g; d++) {
    const cluster = clusters[Math.floor(rng.next() * g)];
    const size = cluster.length;
    for (let c = 0; c < size; c++) w[cluster[Math.floor(rng.next() * size)]] += 1;
  }
  return w;
}

/** The `q` quantile of sorted values (linear interpolation between order statistics). */
function quantile(sorted: Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Percentile interval of each key's bootstrap values (NaN and missing draws left out). */
function percentileIntervals(draws: Record<string, number>[], confidence: number): Record<string, Interval> {
  const keys = new Set<string>();
  for (const d of draws) for (const key of Object.keys(d)) keys.add(key);
  const alpha = (1 - confidence) / 2;
  const out: Record<string, Interval> = {};
  for (const key of keys) {
    const values = Float64Array.from(
      draws.map((d) => d[key]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v)),
    ).sort();
    if (values.length === 0) continue;
    out[key] = { lo: quantile(values, alpha), hi: quantile(values, 1 - alpha) };
  }
  return out;
}

/**
 * Confidence intervals of every metric of `score` over the clips whose speakers are `speakers`
 * (position i of the subset), drawn from the stream `name` of `options.seed`.
 */
export function bootstrapIntervals(
  score: Scorer,
  speakers: readonly string[],
  options: BootstrapOptions,
  name: string,
): Record<string, Interval> {
  if (options.resamples <= 0 || speakers.length === 0) return {};
  const rng = createRng(streamSeed(options.seed, name));
  const clusters = clusterBy(speakers);
  const draws: Record<string, number>[] = [];
  for (let b = 0; b < options.resamples; b++)
    draws.push(score(resampleWeights(clusters, speakers.length, rng)));
  return percentileIntervals(draws, options.confidence);
}

/**
 * Paired bootstrap of a difference: candidate minus baseline, both scored on the same resampled
 * clips (each draw weights both models' predictions of a clip alike), so clip difficulty cancels
 * and the interval is far narrower than comparing two separate intervals.
 */
export function pairedDifferenceIntervals(
  candidate: Scorer,
  baseline: Scorer,
  speakers: readonly string[],
  options: BootstrapOptions,
  name: string,
): Record<string, Interval> {
  if (options.resamples <= 0 || speakers.length === 0) return {};
  const rng = createRng(streamSeed(options.seed, `paired:${name}`));
  const clusters = clusterBy(speakers);
  const draws: Record<string, number>[] = [];
  for (let b = 0; b < options.resamples; b++) {
    const w = resampleWeights(clusters, speakers.length, rng);
    const c = candidate(w);
    const base = baseline(w);
    const d: Record<string, number> = {};
    for (const key of Object.keys(c)) if (key in base) d[key] = c[key] - base[key];
    draws.push(d);
  }
  return percentileIntervals(draws, options.confidence);
}
