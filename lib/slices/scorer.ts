/**
 * Classification metrics of a weighted set of clips, for the bootstrap: a resample is a vector of
 * clip counts, so each resample costs one pass over the clips (a weighted confusion matrix) plus
 * one pass per class for ROC-AUC over scores sorted once up front. With unit weights the metrics
 * equal `classificationReport` (lib/ml/metrics.ts), whose definitions they follow.
 */
import { matthewsCorrcoef, perClassScores } from '../ml/metrics.ts';

/** Predictions of one model on the test clips. */
export interface Predictions {
  labels: string[];
  /** True class per clip (index into `labels`). */
  yTrue: ArrayLike<number>;
  /** Predicted class per clip. */
  yPred: ArrayLike<number>;
  /** n×k class probabilities, row-major (enables `roc_auc_macro`). */
  probs?: ArrayLike<number>;
}

/** Scores a weighting of a fixed subset of clips. */
export type Scorer = (weights: ArrayLike<number>) => Record<string, number>;

interface AucPrep {
  /** Subset positions ordered by the class score. */
  order: Int32Array;
  /** Start of each tie group in `order` (with a final sentinel = length). */
  groups: Int32Array;
}

function prepareAuc(p: Predictions, idx: Int32Array, c: number, k: number): AucPrep {
  const probs = p.probs!;
  const m = idx.length;
  const order = Int32Array.from({ length: m }, (_, i) => i).sort(
    (a, b) => probs[idx[a] * k + c] - probs[idx[b] * k + c],
  );
  const starts: number[] = [];
  for (let i = 0; i < m; i++) {
    if (i === 0 || probs[idx[order[i]] * k + c] !== probs[idx[order[i - 1]] * k + c]) starts.push(i);
  }
  starts.push(m);
  return { order, groups: Int32Array.from(starts) };
}

/** Weighted Mann-Whitney AUC with ties counted one half; NaN without positive or negative weight. */
function weightedAuc(prep: AucPrep, positive: Uint8Array, w: ArrayLike<number>): number {
  let below = 0;
  let sum = 0;
  let totalPos = 0;
  const { order, groups } = prep;
  for (let g = 0; g + 1 < groups.length; g++) {
    let pos = 0;
    let neg = 0;
    for (let i = groups[g]; i < groups[g + 1]; i++) {
      const j = order[i];
      if (positive[j]) pos += w[j];
      else neg += w[j];
    }
    sum += pos * (below + neg / 2);
    below += neg;
    totalPos += pos;
  }
  return totalPos === 0 || below === 0 ? NaN : sum / (totalPos * below);
}

/**
 * A scorer for the clips at `idx` (indices into the predictions): every evaluate metric
 * (`accuracy`, `f1_macro`, `precision_macro`, `recall_macro`, `mcc`, `roc_auc_macro`, and
 * `f1.` / `precision.` / `recall.<label>` of each class present in the weighting) of a weighting
 * of those clips.
 */
export function createScorer(p: Predictions, idx: Int32Array): Scorer {
  const k = p.labels.length;
  const m = idx.length;
  const t = Int32Array.from(idx, (i) => p.yTrue[i]);
  const y = Int32Array.from(idx, (i) => p.yPred[i]);
  const auc = p.probs
    ? p.labels.map((_, c) => ({
        prep: prepareAuc(p, idx, c, k),
        positive: Uint8Array.from(t, (v) => (v === c ? 1 : 0)),
      }))
    : [];
  return (w) => {
    const matrix = Array.from({ length: k }, () => new Array<number>(k).fill(0));
    let total = 0;
    let correct = 0;
    for (let i = 0; i < m; i++) {
      const wi = w[i];
      if (wi === 0) continue;
      matrix[t[i]][y[i]] += wi;
      total += wi;
      if (t[i] === y[i]) correct += wi;
    }
    const s = perClassScores(matrix);
    const present = p.labels.map((_, c) => s.support[c] > 0 || matrix.some((row) => row[c] > 0));
    const macro = (xs: number[]): number => {
      let sum = 0;
      let count = 0;
      xs.forEach((v, c) => {
        if (!present[c]) return;
        sum += v;
        count++;
      });
      return count ? sum / count : 0;
    };
    const out: Record<string, number> = {
      accuracy: total ? correct / total : 0,
      f1_macro: macro(s.f1),
      precision_macro: macro(s.precision),
      recall_macro: macro(s.recall),
      mcc: matthewsCorrcoef(matrix),
    };
    if (auc.length) {
      let sum = 0;
      let count = 0;
      for (const a of auc) {
        const v = weightedAuc(a.prep, a.positive, w);
        if (Number.isNaN(v)) continue;
        sum += v;
        count++;
      }
      if (count) out.roc_auc_macro = sum / count;
    }
    // A class with neither clips nor predictions in this weighting (a slice without it, or a
    // resample that drew none of it) has no per-class scores: recording 0 would fail a slice rule
    // on `f1.<label>` for a speaker who never recorded that emotion, and pull its interval down.
    p.labels.forEach((label, c) => {
      if (!present[c]) return;
      out[`f1.${label}`] = s.f1[c];
      out[`precision.${label}`] = s.precision[c];
      out[`recall.${label}`] = s.recall[c];
    });
    return out;
  };
}
