/**
 * Every plot lockstep draws, as Vega-Lite templates: plain data in, a Vega-Lite spec out. The
 * evaluate stage, `lockstep plots`, the PR report and the dashboard all draw through these
 * functions, so a plot looks the same wherever it appears. Pure: no I/O, no rendering (see
 * ./render.ts for SVG and PNG, ./html.ts for the offline page).
 *
 * This file holds the single-revision templates (one revision's data), the monitoring histograms
 * and the data shapes they share; diff-templates.ts holds the `*Diff` templates, which take one
 * entry per revision (a commit, branch, environment, experiment or the workspace, labelled by
 * `rev`) and draw them together; study-templates.ts the tuning study and experiment comparison
 * plots. The Vega-Lite schema URL is written here only.
 */
import type { TopLevelSpec } from 'vega-lite';

export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** One epoch of train's `history.json`. */
export interface CurvePoint {
  epoch: number;
  loss: number;
  acc: number;
  val_loss: number | null;
  val_acc: number | null;
}

/** A confusion matrix: rows are true labels, columns predicted labels. */
export interface ConfusionData {
  labels: string[];
  matrix: number[][];
}

/** One revision's learning curves. */
export interface RevisionCurves {
  rev: string;
  epochs: CurvePoint[];
  bestEpoch?: number;
}

/** One revision's confusion matrix. */
export interface RevisionConfusion extends ConfusionData {
  rev: string;
}

/** One revision's per-class F1 (label → F1). */
export interface RevisionPerClass {
  rev: string;
  f1: Record<string, number>;
}

/** One slice metric of one revision. */
export interface SliceValue {
  rev: string;
  /** Slice name, e.g. `speaker=OAF` or `gender=female`. */
  slice: string;
  metric: string;
  value: number;
}

/** A feature's binned distributions, as the monitoring report keeps them. */
export interface FeatureHistogram {
  name: string;
  /** Ordering key: the most skewed features are drawn. */
  skew: number;
  bins: { training: number[]; previous: number[] | null; recent: number[] };
}

/** The largest cell of a matrix (0 for an empty one). */
export function maxOf(matrix: number[][]): number {
  return Math.max(0, ...matrix.flat());
}

/** Learning-curve rows (one per epoch, metric and split), tagged with `rev` when given. */
export function curveRows(rev: string | undefined, history: CurvePoint[]) {
  const tag = rev === undefined ? {} : { rev };
  return history.flatMap((h) => [
    { ...tag, epoch: h.epoch, metric: 'loss', split: 'train', value: h.loss },
    { ...tag, epoch: h.epoch, metric: 'accuracy', split: 'train', value: h.acc },
    ...(h.val_loss === null || h.val_loss === undefined
      ? []
      : [{ ...tag, epoch: h.epoch, metric: 'loss', split: 'validation', value: h.val_loss }]),
    ...(h.val_acc === null || h.val_acc === undefined
      ? []
      : [{ ...tag, epoch: h.epoch, metric: 'accuracy', split: 'validation', value: h.val_acc }]),
  ]);
}

/** Confusion matrix heatmap with counts; rows are true labels, columns predictions. */
export function confusionSpec(labels: string[], matrix: number[][], title?: string): TopLevelSpec {
  const values = matrix.flatMap((row, i) =>
    row.map((count, j) => ({ actual: labels[i], predicted: labels[j], count })),
  );
  const axis = { sort: labels };
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: title ?? 'Confusion matrix (test split)',
    data: { values },
    width: 40 * labels.length,
    height: 40 * labels.length,
    encoding: {
      x: { field: 'predicted', type: 'nominal', ...axis },
      y: { field: 'actual', type: 'nominal', ...axis },
    },
    layer: [
      {
        mark: 'rect',
        encoding: { color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues' } } },
      },
      {
        mark: { type: 'text', fontSize: 11 },
        encoding: {
          text: { field: 'count', type: 'quantitative' },
          color: {
            condition: { test: `datum.count > ${maxOf(matrix) / 2}`, value: 'white' },
            value: 'black',
          },
        },
      },
    ],
  };
}

/**
 * Loss and accuracy per epoch, train vs validation, side by side; with `bestEpoch`, a dashed rule
 * marks the epoch whose weights early stopping kept.
 */
export function learningCurvesSpec(history: CurvePoint[], bestEpoch?: number): TopLevelSpec {
  const values = curveRows(undefined, history);
  const x = { field: 'epoch', type: 'quantitative' } as const;
  const best =
    bestEpoch === undefined
      ? []
      : [
          {
            transform: [{ filter: `datum.epoch === ${bestEpoch} && datum.split === 'train'` }],
            mark: { type: 'rule' as const, strokeDash: [4, 3], color: 'gray' },
            encoding: { x },
          },
        ];
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: bestEpoch === undefined ? 'Learning curves' : `Learning curves (best epoch ${bestEpoch})`,
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', sort: ['loss', 'accuracy'] } },
    spec: {
      width: 260,
      height: 180,
      layer: [
        {
          mark: { type: 'line', point: false },
          encoding: {
            x,
            y: { field: 'value', type: 'quantitative' },
            color: { field: 'split', type: 'nominal' },
          },
        },
        ...best,
      ],
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Per-class F1 as bars. */
export function perClassF1Spec(labels: string[], f1: number[]): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'F1 per class (test split)',
    data: { values: labels.map((label, i) => ({ label, f1: f1[i] })) },
    width: 40 * labels.length,
    height: 180,
    mark: 'bar',
    encoding: {
      x: { field: 'label', type: 'nominal', sort: labels },
      y: { field: 'f1', type: 'quantitative', scale: { domain: [0, 1] } },
    },
  };
}

/**
 * Training vs serving distributions of the `top` most skewed features of an environment's
 * monitoring report: training, previous window and recent window, as shares per bin.
 */
export function monitorHistogramsSpec(env: string, features: FeatureHistogram[], top = 6): TopLevelSpec {
  const values: { feature: string; bin: number; source: string; share: number }[] = [];
  for (const f of [...features].sort((a, b) => b.skew - a.skew).slice(0, top)) {
    const series: [string, number[] | null][] = [
      ['training', f.bins.training],
      ['previous', f.bins.previous],
      ['recent', f.bins.recent],
    ];
    for (const [source, counts] of series) {
      if (!counts) continue;
      const total = counts.reduce((a, b) => a + b, 0) || 1;
      counts.forEach((c, bin) => values.push({ feature: f.name, bin, source, share: c / total }));
    }
  }
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: `${env}: training vs serving (most skewed features)`,
    data: { values },
    facet: { field: 'feature', type: 'nominal', columns: 3 },
    spec: {
      width: 200,
      height: 120,
      mark: { type: 'line', interpolate: 'step' },
      encoding: {
        x: { field: 'bin', type: 'ordinal', title: 'bin (under, ..., over)' },
        y: { field: 'share', type: 'quantitative', title: 'share' },
        color: { field: 'source', type: 'nominal' },
      },
    },
  } as TopLevelSpec;
}
