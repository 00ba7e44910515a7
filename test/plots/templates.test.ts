import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { confusionSpec, learningCurvesSpec, perClassF1Spec } from '../../lib/plots/templates.ts';
import { experimentMetricsSpec, tuneObjectiveSpec, tuneParamsSpec } from '../../lib/plots/study-templates.ts';
import { renderSpec, writePlot } from '../../lib/plots/render.ts';

const TRIALS = [0, 1, 2].map((trial) => ({
  trial,
  value: trial === 2 ? NaN : 0.5 + 0.1 * trial,
  status: trial === 0 ? 'baseline' : 'complete',
  params: { lr: 0.001 * (trial + 1), opt: trial ? 'adam' : 'sgd' },
}));

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  expect(String.fromCharCode(...png.subarray(12, 16))).toBe('IHDR');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

describe('plots', () => {
  const history = [1, 2, 3].map((epoch) => ({
    epoch,
    loss: 1 / epoch,
    acc: 0.3 * epoch,
    val_loss: 1.2 / epoch,
    val_acc: 0.25 * epoch,
  }));
  it.each([
    {
      name: 'confusion',
      spec: confusionSpec(
        ['angry', 'sad'],
        [
          [5, 1],
          [2, 4],
        ],
      ),
      text: 'angry',
    },
    { name: 'learning curves', spec: learningCurvesSpec(history), text: 'validation' },
    { name: 'per-class F1', spec: perClassF1Spec(['angry', 'sad'], [0.5, 0.75]), text: 'sad' },
    { name: 'tune objective', spec: tuneObjectiveSpec('f1_macro', TRIALS), text: 'per trial' },
    { name: 'tune params', spec: tuneParamsSpec('f1_macro', ['lr', 'opt'], TRIALS), text: 'adam' },
    {
      name: 'experiment metrics',
      spec: experimentMetricsSpec(
        ['a', 'b'],
        [{ metric: 'f1_macro', experiment: 'a', value: 0.5 }],
        ['f1_macro'],
      ),
      text: 'Metrics by experiment',
    },
  ])('renderSpec $name produces valid SVG and PNG', async ({ spec, text }) => {
    const { svg, png } = await renderSpec(spec);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain(text);
    const width = Number(/width="(\d+)"/.exec(svg)?.[1]);
    const height = Number(/height="(\d+)"/.exec(svg)?.[1]);
    expect(Array.from(png.subarray(0, 8))).toEqual(PNG_SIGNATURE);
    expect(pngSize(png)).toEqual({ width, height });
    expect(width).toBeGreaterThan(50);
    expect(height).toBeGreaterThan(50);
  });

  it('learningCurvesSpec marks the best epoch with a rule', async () => {
    const { svg } = await renderSpec(learningCurvesSpec(history, 2));
    expect(svg).toContain('best epoch 2');
    const without = await renderSpec(learningCurvesSpec(history));
    // One dashed rule per facet (loss, accuracy).
    const dashes = (text: string) => (text.match(/stroke-dasharray="4,3"/g) ?? []).length;
    expect(dashes(svg) - dashes(without.svg)).toBe(2);
  });

  it('writePlot writes the spec, the SVG and the PNG', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plots-'));
    const files = await writePlot(dir, 'per_class_f1', perClassF1Spec(['a', 'b', 'c'], [0.1, 0.2, 0.3]));
    expect(files.map((f) => path.basename(f))).toEqual([
      'per_class_f1.vl.json',
      'per_class_f1.svg',
      'per_class_f1.png',
    ]);
    const spec = JSON.parse(fs.readFileSync(files[0], 'utf8'));
    expect(spec.data.values).toEqual([
      { label: 'a', f1: 0.1 },
      { label: 'b', f1: 0.2 },
      { label: 'c', f1: 0.3 },
    ]);
    expect(Array.from(fs.readFileSync(files[2]).subarray(0, 8))).toEqual(PNG_SIGNATURE);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // One home for plot templates: a Vega-Lite spec is written only in lib/plots/*templates.ts, all
  // of which take the schema URL from lib/plots/templates.ts.
  it('plots templates are the only Vega-Lite specs in lib, stages and actions', () => {
    const root = path.resolve(import.meta.dirname, '../..');
    const bad: string[] = [];
    for (const dir of ['lib', 'stages', 'actions']) {
      for (const f of fs.readdirSync(path.join(root, dir), { recursive: true }) as string[]) {
        if (!/\.(ts|mts|mjs)$/.test(f) || f.includes('node_modules') || f.includes('dist')) continue;
        const rel = `${dir}/${f}`;
        if (rel === 'lib/plots/templates.ts') continue;
        if (/schema\/vega-lite\//.test(fs.readFileSync(path.join(root, rel), 'utf8'))) bad.push(rel);
      }
    }
    expect(bad).toEqual([]);
  });
});
