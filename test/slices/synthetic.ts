/**
 * Synthetic test-split predictions for slice and interval tests: speakers with a chosen accuracy
 * each, labels uniform, wrong answers spread over the other labels. Seeded.
 */
import { createRng } from '../../lib/rng.ts';
import type { ClipInfo } from '../../lib/slices/compute.ts';
import type { Predictions } from '../../lib/slices/scorer.ts';
import type { PredictionsFile } from '../../lib/slices/predictions.ts';

export const LABELS = ['angry', 'happy', 'neutral', 'sad'];

export interface SyntheticSet {
  predictions: Predictions;
  clips: (ClipInfo & { path: string })[];
}

/** `speakers`: id → [clips, accuracy]. The same `seed` gives the same clips and answers. */
export function syntheticSet(speakers: Record<string, [number, number]>, seed: number): SyntheticSet {
  const rng = createRng(seed);
  const k = LABELS.length;
  const yTrue: number[] = [];
  const yPred: number[] = [];
  const probs: number[] = [];
  const clips: SyntheticSet['clips'] = [];
  for (const [speaker, [n, accuracy]] of Object.entries(speakers)) {
    for (let i = 0; i < n; i++) {
      const t = Math.floor(rng.next() * k);
      const right = rng.next() < accuracy;
      // Always draw the wrong answer, so two sets with one seed share their clips and labels.
      const wrong = (t + 1 + Math.floor(rng.next() * (k - 1))) % k;
      const p = right ? t : wrong;
      yTrue.push(t);
      yPred.push(p);
      const row = Array.from({ length: k }, () => rng.next() * 0.2);
      row[p] += 1;
      const sum = row.reduce((a, b) => a + b, 0);
      probs.push(...row.map((v) => v / sum));
      clips.push({
        path: `${speaker}/${i}.wav`,
        speaker,
        gender: speaker.endsWith('f') ? 'female' : 'male',
        duration: 1 + (i % 3) * 0.8,
        sampleRate: 16000,
        format: 'pcm16 mono',
        corpus: 'demo',
      });
    }
  }
  return {
    predictions: {
      labels: LABELS,
      yTrue: Int32Array.from(yTrue),
      yPred: Int32Array.from(yPred),
      probs: Float64Array.from(probs),
    },
    clips,
  };
}

/** The set as a predictions file (what evaluate writes), with speaker slices. */
export function asPredictionsFile(s: SyntheticSet): PredictionsFile {
  const p = s.predictions;
  return {
    version: 1,
    labels: p.labels,
    clips: s.clips.map((c, i) => ({
      path: c.path,
      speaker: c.speaker,
      slices: { speaker: c.speaker, gender: c.gender! },
      true: p.labels[p.yTrue[i]],
      pred: p.labels[p.yPred[i]],
    })),
  };
}
