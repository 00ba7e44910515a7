/**
 * Metrics: numbers read from a stage's JSON metrics files, flattened to dotted keys
 * (`{"f1": {"macro": 0.8}}` → `f1.macro: 0.8`). Non-numbers are left out.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Lockfile } from '../types.ts';
import { ConfigError } from '../errors.ts';

/** Flattens the numbers in a JSON value into dotted keys. */
export function flattenMetrics(
  value: unknown,
  prefix = '',
  into: Record<string, number> = {},
): Record<string, number> {
  if (typeof value === 'number' && Number.isFinite(value)) {
    if (prefix) into[prefix] = value;
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => flattenMetrics(v, prefix ? `${prefix}.${i}` : String(i), into));
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flattenMetrics(v, prefix ? `${prefix}.${k}` : k, into);
  }
  return into;
}

/** Reads and flattens metrics files (repository-relative); later files win on equal keys. */
export function readMetricsFiles(root: string, files: string[], stage: string): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const rel of files) {
    let text: string;
    try {
      text = fs.readFileSync(path.join(root, rel), 'utf8');
    } catch {
      throw new ConfigError(
        `${rel}: metrics file of stage ${stage} was not written. Make the stage write it.`,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(
        `${rel}: metrics file is not valid JSON "${(err as Error).message}". Write JSON.`,
      );
    }
    flattenMetrics(json, '', metrics);
  }
  return metrics;
}

/**
 * The metrics a lock entry records: `metrics` without the keys under the stage's `outOnlyMetrics`
 * (`slices` drops `slices.speaker.S03.n` and the rest), which stay in the out only. Also applied
 * to metrics restored from a run-cache entry or lock entry written by an earlier version.
 */
export function lockedMetrics(
  metrics: Record<string, number> | undefined,
  outOnly: readonly string[] | undefined,
): Record<string, number> | undefined {
  if (!metrics || !outOnly?.length) return metrics;
  const dropped = (k: string) => outOnly.some((top) => k === top || k.startsWith(`${top}.`));
  return Object.fromEntries(Object.entries(metrics).filter(([k]) => !dropped(k)));
}

/** Every stage's metrics from a lockfile as `<stage>.<metric>` → value. */
export function lockfileMetrics(lf: Pick<Lockfile, 'stages'>): Record<string, number> {
  const all: Record<string, number> = {};
  for (const name of Object.keys(lf.stages).sort()) {
    for (const [k, v] of Object.entries(lf.stages[name]!.metrics ?? {})) all[`${name}.${k}`] = v;
  }
  return all;
}
