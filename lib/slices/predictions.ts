/**
 * `out/eval/predictions.json`: each test clip's true and predicted label (and class
 * probabilities), so the gate can compare a candidate with a baseline on the same clips (a
 * paired bootstrap of the difference) instead of comparing two separate intervals.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { writeFileAtomic } from '../atomic.ts';
import { ConfigError } from '../errors.ts';
import type { Predictions } from './scorer.ts';
import { parseValue } from '../yaml-source.ts';

export const predictionsFileSchema = z
  .object({
    version: z.literal(1),
    labels: z.array(z.string()).min(1),
    clips: z.array(
      z
        .object({
          path: z.string(),
          /** Content hash of the audio, when the manifest gave it: clips pair by content. */
          sha256: z.string().optional(),
          speaker: z.string(),
          /** The clip's slice of each declared kind (`{ speaker: "S03", gender: "female" }`). */
          slices: z.record(z.string(), z.string()).optional(),
          true: z.string(),
          pred: z.string(),
          /** Probability of each of `labels`. */
          probs: z.array(z.number()).optional(),
        })
        .strict(),
    ),
  })
  .strict();
export type PredictionsFile = z.infer<typeof predictionsFileSchema>;

/** Writes the predictions of `clips` (aligned with `p`), probabilities rounded to 6 digits. */
export async function writePredictions(
  file: string,
  p: Predictions,
  clips: { path: string; sha256?: string; speaker: string; slices?: Record<string, string> }[],
): Promise<void> {
  const k = p.labels.length;
  const out: PredictionsFile = {
    version: 1,
    labels: p.labels,
    clips: clips.map((c, i) => ({
      path: c.path,
      ...(c.sha256 ? { sha256: c.sha256 } : {}),
      speaker: c.speaker,
      ...(c.slices ? { slices: c.slices } : {}),
      true: p.labels[p.yTrue[i]],
      pred: p.labels[p.yPred[i]],
      ...(p.probs
        ? { probs: Array.from({ length: k }, (_, c2) => Math.round(p.probs![i * k + c2] * 1e6) / 1e6) }
        : {}),
    })),
  };
  await writeFileAtomic(file, JSON.stringify(out) + '\n');
}

/** Parses predictions text; `where` names the source in errors. */
export function parsePredictions(text: string, where: string): PredictionsFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${where}: not valid JSON (${(err as Error).message}). Re-run the evaluate stage.`);
  }
  return parseValue(predictionsFileSchema, json, where, { text, suffix: ', or re-run the evaluate stage' });
}

/** Reads `predictions.json`. @throws ConfigError when unreadable or malformed. */
export function readPredictions(file: string): PredictionsFile {
  return parsePredictions(fs.readFileSync(file, 'utf8'), file);
}

/** The identity a clip pairs on: its content hash when known, else its path. */
export function clipKey(c: { path: string; sha256?: string }): string {
  return c.sha256 ? `sha256:${c.sha256}` : `path:${c.path}`;
}

/** Two models' predictions aligned clip by clip (the candidate's clips and order). */
export interface PairedPredictions {
  candidate: Predictions;
  baseline: Predictions;
  speakers: string[];
  /** Each clip's slice values, from the candidate's file. */
  slices: Record<string, string>[];
}

/**
 * Candidate and baseline predictions on the clips both scored, in the candidate's order, with
 * the baseline's labels mapped onto the candidate's. Null when the baseline lacks any candidate
 * clip (a different test set) or a label: then no paired comparison is possible.
 */
export function pairPredictions(
  candidate: PredictionsFile,
  baseline: PredictionsFile,
): PairedPredictions | null {
  const labels = candidate.labels;
  const index = new Map(labels.map((l, i) => [l, i]));
  const base = new Map(baseline.clips.map((c) => [clipKey(c), c]));
  const n = candidate.clips.length;
  const cand = { labels, yTrue: new Int32Array(n), yPred: new Int32Array(n) };
  const other = { labels, yTrue: new Int32Array(n), yPred: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    const c = candidate.clips[i];
    const b = base.get(clipKey(c));
    if (!b || b.true !== c.true) return null;
    const ct = index.get(c.true);
    const cp = index.get(c.pred);
    const bp = index.get(b.pred);
    if (ct === undefined || cp === undefined || bp === undefined) return null;
    cand.yTrue[i] = ct;
    cand.yPred[i] = cp;
    other.yTrue[i] = ct;
    other.yPred[i] = bp;
  }
  return {
    candidate: cand,
    baseline: other,
    speakers: candidate.clips.map((c) => c.speaker),
    slices: candidate.clips.map((c) => c.slices ?? { speaker: c.speaker }),
  };
}
