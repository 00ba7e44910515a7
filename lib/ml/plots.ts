/**
 * Evaluation plots as Vega-Lite specs, rendered headless: Vega-Lite `compile` → Vega `View`
 * (renderer `none`) `toSVG()` → resvg for PNG. Each plot is written as `<name>.vl.json` (the
 * spec, for the PR comment and for editing), `<name>.svg` and `<name>.png`.
 */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../atomic.ts';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Confusion matrix heatmap with counts; rows are true labels, columns predictions. */
export function confusionSpec(labels: string[], matrix: number[][]): TopLevelSpec {
  const values = matrix.flatMap((row, i) =>
    row.map((count, j) => ({ actual: labels[i], predicted: labels[j], count })),
  );
  const axis = { sort: labels };
  return {
    $schema: SCHEMA,
    title: 'Confusion matrix (test split)',
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

export interface CurvePoint {
  epoch: number;
  loss: number;
  acc: number;
  val_loss: number | null;
  val_acc: number | null;
}

/**
 * Loss and accuracy per epoch, train vs validation, side by side; with `bestEpoch`, a dashed rule
 * marks the epoch whose weights early stopping kept.
 */
export function learningCurvesSpec(history: CurvePoint[], bestEpoch?: number): TopLevelSpec {
  const values = history.flatMap((h) => [
    { epoch: h.epoch, metric: 'loss', split: 'train', value: h.loss },
    { epoch: h.epoch, metric: 'accuracy', split: 'train', value: h.acc },
    ...(h.val_loss === null
      ? []
      : [{ epoch: h.epoch, metric: 'loss', split: 'validation', value: h.val_loss }]),
    ...(h.val_acc === null
      ? []
      : [{ epoch: h.epoch, metric: 'accuracy', split: 'validation', value: h.val_acc }]),
  ]);
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
    $schema: SCHEMA,
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
    $schema: SCHEMA,
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

function maxOf(matrix: number[][]): number {
  return Math.max(0, ...matrix.flat());
}

/** Renders a Vega-Lite spec to SVG text and PNG bytes without a browser. */
export async function renderSpec(spec: TopLevelSpec): Promise<{ svg: string; png: Uint8Array }> {
  const vgSpec = compile(spec).spec;
  const view = new vega.View(vega.parse(vgSpec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const png = new Resvg(svg, { background: 'white', font: { loadSystemFonts: true } }).render().asPng();
    return { svg, png: new Uint8Array(png) };
  } finally {
    view.finalize();
  }
}

/** Writes `<dir>/<name>.vl.json`, `.svg` and `.png`; returns the three paths. */
export async function writePlot(dir: string, name: string, spec: TopLevelSpec): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const { svg, png } = await renderSpec(spec);
  const files = [`${name}.vl.json`, `${name}.svg`, `${name}.png`].map((f) => path.join(dir, f));
  await writeFileAtomic(files[0], JSON.stringify(spec, null, 1) + '\n');
  await writeFileAtomic(files[1], svg);
  await writeFileAtomic(files[2], png);
  return files;
}
