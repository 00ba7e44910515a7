/**
 * Plots that compare revisions: one entry per revision (a commit, branch, environment,
 * experiment or the workspace, labelled by `rev`), drawn overlaid, side by side or grouped.
 */
import type { TopLevelSpec } from 'vega-lite';
import {
  VEGA_LITE_SCHEMA,
  curveRows,
  type ConfusionData,
  type RevisionConfusion,
  type RevisionCurves,
  type RevisionPerClass,
  type SliceValue,
} from './templates.ts';

/**
 * The colour encoding of the revisions: Vega's 10 categorical colours for up to 10, tableau20 for
 * up to 20, and beyond that a sequential scheme sampled once per revision (in their order), so no
 * two revisions share a colour however many are compared.
 */
export function revisionColour(order: string[]): {
  field: 'rev';
  type: 'nominal';
  sort: string[];
  title: string;
  scale?: { scheme: string };
} {
  const n = new Set(order).size;
  const scheme = n <= 10 ? undefined : n <= 20 ? 'tableau20' : 'viridis';
  return {
    field: 'rev',
    type: 'nominal',
    sort: order,
    title: 'revision',
    ...(scheme ? { scale: { scheme } } : {}),
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
        color: revisionColour(revs.map((r) => r.rev)),
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
      color: revisionColour(order),
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
        color: revisionColour(order),
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}
