/**
 * Every plot lockstep draws, as Vega-Lite templates: plain data in, a Vega-Lite spec out. The
 * evaluate stage, `lockstep plots`, the PR report and the dashboard all draw through these
 * functions, so a plot looks the same wherever it appears. Pure: no I/O, no rendering (see
 * ./render.ts for SVG and PNG, ./html.ts for the offline page).
 *
 * Single-revision templates take one revision's data; the `*Diff` templates take one entry per
 * revision (a commit, branch, environment, experiment or the workspace, labelled by `rev`) and
 * draw them together: overlaid, side by side or grouped.
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

function maxOf(matrix: number[][]): number {
  return Math.max(0, ...matrix.flat());
}

function curveRows(rev: string | undefined, history: CurvePoint[]) {
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
 * Learning curves of several revisions overlaid: one colour per revision, solid for train and
 * dashed for validation, loss and accuracy side by side.
 */
export function learningCurvesDiffSpec(revs: RevisionCurves[]): TopLevelSpec {
  const values = revs.flatMap((r) => curveRows(r.rev, r.epochs));
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Learning curves by revision',
    data: { values },
    facet: { column: { field: 'metric', type: 'nominal', sort: ['loss', 'accuracy'] } },
    spec: {
      width: 280,
      height: 200,
      mark: { type: 'line', point: false },
      encoding: {
        x: { field: 'epoch', type: 'quantitative' },
        y: { field: 'value', type: 'quantitative' },
        color: { field: 'rev', type: 'nominal', sort: revs.map((r) => r.rev), title: 'revision' },
        strokeDash: { field: 'split', type: 'nominal', sort: ['train', 'validation'] },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/**
 * Confusion matrices side by side, one per revision, then the difference of the last against the
 * first (`last − first`, counts; blue where the last has more, red where it has fewer). Labels
 * are the union of every revision's, in first-seen order.
 */
export function confusionDiffSpec(revs: RevisionConfusion[]): TopLevelSpec {
  const labels = [...new Set(revs.flatMap((r) => r.labels))];
  const cell = (r: ConfusionData, a: string, p: string) =>
    r.matrix[r.labels.indexOf(a)]?.[r.labels.indexOf(p)] ?? 0;
  const axis = { sort: labels };
  const size = { width: 36 * labels.length, height: 36 * labels.length };
  const panels: object[] = revs.map((r) => {
    const values = labels.flatMap((a) =>
      labels.map((p) => ({ actual: a, predicted: p, count: cell(r, a, p) })),
    );
    return {
      title: r.rev,
      data: { values },
      ...size,
      encoding: {
        x: { field: 'predicted', type: 'nominal', ...axis },
        y: { field: 'actual', type: 'nominal', ...axis },
      },
      layer: [
        {
          mark: 'rect',
          encoding: {
            color: { field: 'count', type: 'quantitative', scale: { scheme: 'blues' }, legend: null },
          },
        },
        {
          mark: { type: 'text', fontSize: 10 },
          encoding: { text: { field: 'count', type: 'quantitative' } },
        },
      ],
    };
  });
  if (revs.length >= 2) {
    const first = revs[0]!;
    const last = revs[revs.length - 1]!;
    const values = labels.flatMap((a) =>
      labels.map((p) => ({ actual: a, predicted: p, delta: cell(last, a, p) - cell(first, a, p) })),
    );
    const span = Math.max(1, ...values.map((v) => Math.abs(v.delta)));
    panels.push({
      title: `${last.rev} − ${first.rev}`,
      data: { values },
      ...size,
      encoding: {
        x: { field: 'predicted', type: 'nominal', ...axis },
        y: { field: 'actual', type: 'nominal', ...axis },
      },
      layer: [
        {
          mark: 'rect',
          encoding: {
            color: {
              field: 'delta',
              type: 'quantitative',
              scale: { scheme: 'redblue', domain: [-span, span] },
              title: 'difference',
            },
          },
        },
        {
          mark: { type: 'text', fontSize: 10 },
          encoding: { text: { field: 'delta', type: 'quantitative' } },
        },
      ],
    });
  }
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Confusion matrices (test split)',
    hconcat: panels,
    resolve: { scale: { color: 'independent' } },
  } as TopLevelSpec;
}

/** Per-class F1 grouped by revision: one group per class, one bar per revision. */
export function perClassF1DiffSpec(revs: RevisionPerClass[]): TopLevelSpec {
  const labels = [...new Set(revs.flatMap((r) => Object.keys(r.f1)))];
  const values = revs.flatMap((r) =>
    labels.filter((l) => r.f1[l] !== undefined).map((label) => ({ rev: r.rev, label, f1: r.f1[label] })),
  );
  const order = revs.map((r) => r.rev);
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'F1 per class by revision (test split)',
    data: { values },
    width: Math.max(200, 22 * labels.length * Math.max(1, revs.length)),
    height: 200,
    mark: 'bar',
    encoding: {
      x: { field: 'label', type: 'nominal', sort: labels, title: 'class' },
      xOffset: { field: 'rev', type: 'nominal', sort: order },
      y: { field: 'f1', type: 'quantitative', scale: { domain: [0, 1] } },
      color: { field: 'rev', type: 'nominal', sort: order, title: 'revision' },
    },
  };
}

/** Slice metrics grouped by revision: one panel per metric, one group per slice. */
export function sliceMetricsSpec(values: SliceValue[], revOrder?: string[]): TopLevelSpec {
  const order = revOrder ?? [...new Set(values.map((v) => v.rev))];
  const slices = [...new Set(values.map((v) => v.slice))];
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Slice metrics by revision',
    data: { values },
    facet: { row: { field: 'metric', type: 'nominal' } },
    spec: {
      width: Math.max(200, 18 * slices.length * Math.max(1, order.length)),
      height: 160,
      mark: 'bar',
      encoding: {
        x: { field: 'slice', type: 'nominal', sort: slices },
        xOffset: { field: 'rev', type: 'nominal', sort: order },
        y: { field: 'value', type: 'quantitative' },
        color: { field: 'rev', type: 'nominal', sort: order, title: 'revision' },
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
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

/** One trial of a tuning study, as its plots need it. */
export interface TrialPoint {
  trial: number;
  /** The objective; non-finite for a failed trial (left out of the plots). */
  value: number;
  /** `baseline`, `pruned` or `complete`. */
  status: string;
  params: Record<string, unknown>;
}

/** A tuning study's objective per trial, coloured by status (pruned trials marked). */
export function tuneObjectiveSpec(objective: string, trials: TrialPoint[]): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: `${objective} per trial`,
    width: 420,
    height: 220,
    data: {
      values: trials
        .filter((t) => Number.isFinite(t.value))
        .map((t) => ({ trial: t.trial, value: t.value, status: t.status })),
    },
    mark: { type: 'point', filled: true, size: 80 },
    encoding: {
      x: { field: 'trial', type: 'quantitative', title: 'trial' },
      y: { field: 'value', type: 'quantitative', title: objective, scale: { zero: false } },
      color: { field: 'status', type: 'nominal' },
    },
  };
}

/**
 * Each tuned param (`keys`) against the objective, one panel per param: a numeric param on a
 * quantitative axis, a choice (strings, booleans) on a nominal one, so no panel drops its points.
 */
export function tuneParamsSpec(objective: string, keys: string[], trials: TrialPoint[]): TopLevelSpec {
  const done = trials.filter((t) => Number.isFinite(t.value));
  const values = done.flatMap((t) =>
    keys.map((k) => ({
      param: k,
      x: typeof t.params[k] === 'number' ? t.params[k] : String(t.params[k]),
      value: t.value,
      pruned: t.status === 'pruned',
    })),
  );
  const numeric = (k: string) => done.every((t) => typeof t.params[k] === 'number');
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: `params against ${objective}`,
    data: { values },
    columns: 3,
    concat: keys.map((k) => ({
      width: 200,
      height: 160,
      transform: [{ filter: { field: 'param', equal: k } }],
      mark: { type: 'point', filled: true },
      encoding: {
        x: numeric(k)
          ? { field: 'x', type: 'quantitative', title: k, scale: { zero: false } }
          : { field: 'x', type: 'nominal', title: k },
        y: { field: 'value', type: 'quantitative', title: objective, scale: { zero: false } },
        color: { field: 'pruned', type: 'nominal' },
      },
    })),
  } as TopLevelSpec;
}

/** Metrics grouped by experiment (the dashboard's compare view): one group per metric, in `metrics` order. */
export function experimentMetricsSpec(
  experiments: string[],
  values: { metric: string; experiment: string; value: number }[],
  metrics: string[],
): TopLevelSpec {
  return {
    $schema: VEGA_LITE_SCHEMA,
    title: 'Metrics by experiment',
    data: { values },
    width: Math.max(240, 36 * metrics.length * Math.min(experiments.length, 6)),
    height: 220,
    mark: 'bar',
    encoding: {
      x: { field: 'metric', type: 'nominal', title: null, sort: metrics },
      xOffset: { field: 'experiment', type: 'nominal', sort: experiments },
      y: { field: 'value', type: 'quantitative' },
      color: { field: 'experiment', type: 'nominal', sort: experiments },
      tooltip: [{ field: 'experiment' }, { field: 'metric' }, { field: 'value' }],
    },
  };
}
