/**
 * Slices of the test split and their metrics: each `evaluate.slices` entry groups the clips by
 * one attribute (speaker, gender, corpus, duration bin, sample rate, sample format), and every
 * metric is computed per group, each with its speaker-clustered bootstrap interval.
 */
import type { SliceKind } from '../params-schema.ts';
import { bootstrapIntervals, type BootstrapOptions } from './bootstrap.ts';
import { createScorer, type Predictions } from './scorer.ts';
import type { Interval, SliceResult } from './shape.ts';

/** What the manifest knows about one test clip. */
export interface ClipInfo {
  speaker: string;
  gender?: string;
  corpus?: string;
  /** Seconds. */
  duration?: number;
  sampleRate?: number;
  format?: string;
}

/** One declared slice kind (`evaluate.slices[]`, defaults applied). */
export interface SliceSpec {
  kind: SliceKind;
  min_size: number;
  bins?: number[];
}

/** Rounds for stable, readable diffs (as evaluate's headline metrics). */
export function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}

function roundAll(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round6(v)]));
}

function roundIntervals(m: Record<string, Interval>): Record<string, Interval> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, { lo: round6(v.lo), hi: round6(v.hi) }]));
}

/** The duration bin of `seconds` for increasing `edges`: `<1.5s`, `1.5-2.5s`, `>=2.5s`. */
export function durationBin(seconds: number, edges: number[]): string {
  if (seconds < edges[0]) return `<${edges[0]}s`;
  for (let i = 1; i < edges.length; i++) if (seconds < edges[i]) return `${edges[i - 1]}-${edges[i]}s`;
  return `>=${edges[edges.length - 1]}s`;
}

/** The slice a clip falls in for `spec`, or undefined when the manifest does not know. */
export function sliceValue(spec: SliceSpec, clip: ClipInfo): string | undefined {
  switch (spec.kind) {
    case 'speaker':
      return clip.speaker;
    case 'gender':
      return clip.gender || undefined;
    case 'corpus':
      return clip.corpus || undefined;
    case 'duration':
      return clip.duration === undefined ? undefined : durationBin(clip.duration, spec.bins ?? [1.5, 2.5]);
    case 'sample_rate':
      return clip.sampleRate ? String(clip.sampleRate) : undefined;
    case 'format':
      return clip.format || undefined;
  }
}

/** A clip's slice of every declared kind it has a value for. */
export function sliceValues(specs: SliceSpec[], clip: ClipInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const v = sliceValue(spec, clip);
    if (v !== undefined) out[spec.kind] = v;
  }
  return out;
}

/** Headline metrics' intervals over the whole test split. */
export function overallIntervals(
  p: Predictions,
  clips: ClipInfo[],
  options: BootstrapOptions,
): Record<string, Interval> {
  const idx = Int32Array.from(clips, (_, i) => i);
  return roundIntervals(
    bootstrapIntervals(
      createScorer(p, idx),
      clips.map((c) => c.speaker),
      options,
      'overall',
    ),
  );
}

/**
 * Every declared slice: kind → value → clips, speakers, metrics and intervals. Values are sorted;
 * clips whose attribute is unknown fall in no slice of that kind.
 */
export function computeSlices(
  p: Predictions,
  clips: ClipInfo[],
  specs: SliceSpec[],
  options: BootstrapOptions,
): Partial<Record<SliceKind, Record<string, SliceResult>>> {
  const out: Partial<Record<SliceKind, Record<string, SliceResult>>> = {};
  for (const spec of specs) {
    const members = new Map<string, number[]>();
    clips.forEach((clip, i) => {
      const v = sliceValue(spec, clip);
      if (v === undefined) return;
      const list = members.get(v);
      if (list) list.push(i);
      else members.set(v, [i]);
    });
    const byValue: Record<string, SliceResult> = {};
    for (const value of [...members.keys()].sort()) {
      const idx = Int32Array.from(members.get(value)!);
      const score = createScorer(p, idx);
      const speakers = Array.from(idx, (i) => clips[i].speaker);
      byValue[value] = {
        n: idx.length,
        speakers: new Set(speakers).size,
        min_size: spec.min_size,
        metrics: roundAll(score(new Float64Array(idx.length).fill(1))),
        intervals: roundIntervals(bootstrapIntervals(score, speakers, options, `${spec.kind}:${value}`)),
      };
    }
    out[spec.kind] = byValue;
  }
  return out;
}
