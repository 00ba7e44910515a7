/**
 * Classification metrics for the evaluate stage, following scikit-learn's definitions: accuracy,
 * per-class and macro precision / recall / F1 (0 when undefined, like `zero_division=0`),
 * multiclass Matthews correlation (Gorodkin's R_K, as `matthews_corrcoef`), one-vs-rest ROC-AUC
 * with ties counted half (macro over classes that have both positives and negatives), and the
 * confusion matrix (rows = true class, columns = predicted class).
 */

/** `matrix[i][j]`: examples of true class i predicted as class j. */
export function confusionMatrix(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  classes: number,
): number[][] {
  if (yTrue.length !== yPred.length)
    throw new RangeError('confusionMatrix: yTrue and yPred differ in length');
  const m = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < yTrue.length; i++) m[yTrue[i]][yPred[i]]++;
  return m;
}

export interface ClassScores {
  precision: number[];
  recall: number[];
  f1: number[];
  /** True examples per class. */
  support: number[];
}

/** Per-class precision, recall and F1 from a confusion matrix. */
export function perClassScores(matrix: number[][]): ClassScores {
  const k = matrix.length;
  const precision: number[] = [];
  const recall: number[] = [];
  const f1: number[] = [];
  const support: number[] = [];
  for (let c = 0; c < k; c++) {
    const tp = matrix[c][c];
    let predicted = 0;
    let actual = 0;
    for (let j = 0; j < k; j++) {
      predicted += matrix[j][c];
      actual += matrix[c][j];
    }
    const p = predicted ? tp / predicted : 0;
    const r = actual ? tp / actual : 0;
    precision.push(p);
    recall.push(r);
    f1.push(p + r > 0 ? (2 * p * r) / (p + r) : 0);
    support.push(actual);
  }
  return { precision, recall, f1, support };
}

/** Multiclass Matthews correlation coefficient (0 when undefined). */
export function matthewsCorrcoef(matrix: number[][]): number {
  const k = matrix.length;
  let correct = 0;
  let total = 0;
  const t = new Array<number>(k).fill(0);
  const p = new Array<number>(k).fill(0);
  for (let i = 0; i < k; i++) {
    correct += matrix[i][i];
    for (let j = 0; j < k; j++) {
      total += matrix[i][j];
      t[i] += matrix[i][j];
      p[j] += matrix[i][j];
    }
  }
  let pt = 0;
  let pp = 0;
  let tt = 0;
  for (let c = 0; c < k; c++) {
    pt += p[c] * t[c];
    pp += p[c] * p[c];
    tt += t[c] * t[c];
  }
  const denom = Math.sqrt((total * total - pp) * (total * total - tt));
  return denom === 0 ? 0 : (correct * total - pt) / denom;
}

/**
 * Binary ROC-AUC: the probability that a random positive scores above a random negative, ties
 * counting one half (Mann–Whitney U with average ranks). NaN without positives or negatives.
 */
export function rocAuc(positive: ArrayLike<boolean>, scores: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avg = (i + j) / 2 + 1;
    for (let r = i; r <= j; r++) ranks[order[r]] = avg;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (positive[i]) {
      nPos++;
      rankSum += ranks[i];
    }
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * One-vs-rest ROC-AUC macro average over the classes with both positives and negatives.
 * `probs` is n×k row-major. NaN when no class qualifies.
 */
export function rocAucOvrMacro(yTrue: ArrayLike<number>, probs: ArrayLike<number>, classes: number): number {
  const n = yTrue.length;
  let sum = 0;
  let count = 0;
  for (let c = 0; c < classes; c++) {
    const pos = Array.from({ length: n }, (_, i) => yTrue[i] === c);
    const sc = Array.from({ length: n }, (_, i) => probs[i * classes + c]);
    const auc = rocAuc(pos, sc);
    if (!Number.isNaN(auc)) {
      sum += auc;
      count++;
    }
  }
  return count ? sum / count : NaN;
}

function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}

export interface ClassificationReport {
  /** Flat keys for `metrics.json` (`accuracy`, `f1_macro`, `f1.<label>`, ...). */
  metrics: Record<string, number>;
  confusion: { labels: string[]; matrix: number[][] };
}

/**
 * Every evaluate metric at once. `probs` (n×k) enables `roc_auc_macro`; it is left out when no
 * class has both positive and negative examples.
 */
export function classificationReport(
  yTrue: ArrayLike<number>,
  yPred: ArrayLike<number>,
  labels: string[],
  probs?: ArrayLike<number>,
): ClassificationReport {
  const k = labels.length;
  const matrix = confusionMatrix(yTrue, yPred, k);
  const s = perClassScores(matrix);
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) correct++;
  // Macro averages over the labels present in the data (true or predicted), as scikit-learn does.
  const present = labels.map((_, c) => s.support[c] > 0 || matrix.some((row) => row[c] > 0));
  const pick = (xs: number[]): number[] => xs.filter((_, c) => present[c]);
  const metrics: Record<string, number> = {
    accuracy: yTrue.length ? correct / yTrue.length : 0,
    f1_macro: mean(pick(s.f1)),
    precision_macro: mean(pick(s.precision)),
    recall_macro: mean(pick(s.recall)),
    mcc: matthewsCorrcoef(matrix),
  };
  if (probs) {
    const auc = rocAucOvrMacro(yTrue, probs, k);
    if (!Number.isNaN(auc)) metrics.roc_auc_macro = auc;
  }
  labels.forEach((label, c) => {
    metrics[`f1.${label}`] = s.f1[c];
    metrics[`precision.${label}`] = s.precision[c];
    metrics[`recall.${label}`] = s.recall[c];
  });
  return { metrics, confusion: { labels, matrix } };
}
