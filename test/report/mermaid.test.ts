/**
 * Every Mermaid block the PR report emits renders in headless Chromium with the `mermaid`
 * package (its dist bundle loaded into a blank page, no network), and each chart has one series
 * per revision: base and head.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { renderReport, type Comparison } from '../../lib/report/render.ts';
import {
  distinctTexts,
  learningCurvesChart,
  mermaidBlocks,
  perClassF1Chart,
  type ChartRevision,
} from '../../lib/report/charts.ts';
import { closeChromium, launchChromium, recordingPage } from '../support/chromium.ts';

let browser: Browser;
let page: Page;
let requests: string[];
beforeAll(async () => {
  browser = await launchChromium();
  const rec = await recordingPage(browser, (u) => u.startsWith('data:') || u === 'about:blank');
  page = rec.page;
  requests = rec.requests;
  await page.addScriptTag({ path: path.resolve('node_modules/mermaid/dist/mermaid.min.js') });
  await page.evaluate(() => (globalThis as any).mermaid.initialize({ startOnLoad: false }));
}, 60_000);
afterAll(async () => {
  await closeChromium(browser);
});

/** Renders one block; resolves the SVG text, rejects with Mermaid's parse or render error. */
async function renderMermaid(text: string, id: string): Promise<string> {
  return page.evaluate(async ([t, i]) => (await (globalThis as any).mermaid.render(i, t)).svg as string, [
    text,
    id,
  ] as const);
}

const LABELS = ['angry', 'happy', 'sad', 'neutral'];

function revision(label: string, epochs: number, shift: number) {
  const metrics: Record<string, number> = { accuracy: 0.6 + shift, f1_macro: 0.55 + shift, mcc: 0.4 + shift };
  LABELS.forEach((l, i) => (metrics[`f1.${l}`] = 0.3 + 0.1 * i + shift));
  return {
    label,
    metrics,
    history: {
      epochs: Array.from({ length: epochs }, (_, i) => ({
        epoch: i + 1,
        loss: 1 / (i + 1),
        acc: 0.1 * i,
        val_loss: 1.2 / (i + 1),
        val_acc: 0.08 * i + shift,
      })),
      best_epoch: epochs - 1,
    },
    slices: [
      { slice: 'speaker=OAF', metric: 'f1_macro', value: 0.3 + shift, n: 30, gated: true },
      { slice: 'speaker=YAF', metric: 'f1_macro', value: 0.8, n: 30, gated: true },
    ],
  };
}

const cases: { name: string; comparison: Comparison; series: number }[] = [
  {
    name: 'base and head',
    comparison: { base: revision('main', 8, 0), head: revision('this PR', 6, 0.05) },
    series: 2,
  },
  // Hostile names from git: quotes, brackets and a fence must not break the block.
  {
    name: 'names with Mermaid syntax in them',
    comparison: {
      base: revision('feat/"x"] --> [y', 3, 0),
      head: { ...revision('head ```', 3, 0.1), metrics: { ...revision('', 3, 0.1).metrics, 'f1.a"b]': 0.5 } },
    },
    series: 2,
  },
  { name: 'head only', comparison: { head: revision('this PR', 4, 0) }, series: 1 },
];

describe('report mermaid', () => {
  it.each(cases)(
    'report mermaid blocks render in Chromium with one series per revision: $name',
    async ({ comparison, series }) => {
      const body = renderReport({ comparison });
      const blocks = mermaidBlocks(body);
      expect(blocks).toHaveLength(2);
      for (const [i, block] of blocks.entries()) {
        const svg = await renderMermaid(block, `chart${i}${series}${Math.random().toString(36).slice(2, 8)}`);
        expect(svg).not.toMatch(/Syntax error/i);
        const plots = svg.match(/class="(?:line|bar)-plot-\d+"/g) ?? [];
        expect(plots).toHaveLength(series);
      }
      expect(requests.filter((u) => !u.startsWith('data:') && u !== 'about:blank')).toEqual([]);
    },
    30_000,
  );

  it('report mermaid learning curves leave out a history without accuracy instead of drawing NaN', () => {
    const lossOnly = {
      epochs: [1, 2].map((epoch) => ({ epoch, loss: 1 / epoch })),
    } as unknown as NonNullable<ChartRevision['history']>;
    const chart = learningCurvesChart([
      { label: 'old', history: lossOnly },
      { label: 'head', history: revision('head', 3, 0).history },
    ]);
    expect(chart).toBeDefined();
    expect(chart).not.toContain('NaN');
    expect(chart!.match(/^\s+line /gm)).toHaveLength(1);
    expect(learningCurvesChart([{ label: 'old', history: lossOnly }])).toBeUndefined();
  });

  it('report mermaid legend names stay distinct when long names shorten alike or names repeat', async () => {
    const a = 'feature/retrain-with-augmented-speakers-experiment-1';
    const b = 'feature/retrain-with-augmented-speakers-experiment-2';
    expect(distinctTexts([a, b])).toEqual([
      'feature/retrain-with-au…ers-experiment-1',
      'feature/retrain-with-au…ers-experiment-2',
    ]);
    expect(distinctTexts(['main', 'main', 'other'])).toEqual(['main', 'main (2)', 'other']);
    expect(distinctTexts(['x'.repeat(60), 'x'.repeat(60)]).every((t) => t.length <= 40)).toBe(true);
    const revs: ChartRevision[] = [a, b].map((label, i) => ({
      label,
      history: { epochs: [{ epoch: 1, loss: 1, acc: 0.5 + i / 10, val_loss: null, val_acc: null }] },
      f1: { 'class-with-a-long-name-alpha': 0.5, 'class-with-a-long-name-omega': 0.6 },
    }));
    for (const [i, block] of [learningCurvesChart(revs)!, perClassF1Chart(revs)!].entries()) {
      const body = mermaidBlocks(block)[0]!;
      const series = [...body.matchAll(/^ {4}(?:line|bar) "([^"]*)"/gm)].map((m) => m[1]);
      expect(new Set(series).size, body).toBe(2);
      const svg = await renderMermaid(body, `distinct${i}`);
      expect(svg).not.toMatch(/Syntax error/i);
    }
    const axis = /x-axis \[(.*)\]/.exec(mermaidBlocks(perClassF1Chart(revs)!)[0]!)![1]!;
    expect(new Set(axis.split('", "')).size).toBe(2);
  });

  it('report mermaid renderer rejects a broken block (the check can fail)', async () => {
    await expect(renderMermaid('xychart-beta\n    line [1, 2', 'broken')).rejects.toThrow();
  });

  it('report leads with headline deltas and the worst slice, then the gate verdict; per-class in details', () => {
    const body = renderReport({ comparison: cases[0]!.comparison, metricsDiff: '| m | 1 |' });
    expect(body).toMatch(/\| F1 \(macro\) \| 0\.55 \| 0\.6 \| \+0\.05 ▲ \|/);
    expect(body).toMatch(/\| MCC \| 0\.4 \| 0\.45 \| \+0\.05 ▲ \|/);
    expect(body).toMatch(
      /\| worst slice \(f1_macro\) \| 0\.3 \(speaker=OAF\) \| 0\.35 \(speaker=OAF\) \| \+0\.05 ▲ \|/,
    );
    expect(body.indexOf('| F1 (macro)')).toBeLessThan(body.indexOf('### Gate verdict'));
    expect(body.indexOf('### Gate verdict')).toBeLessThan(body.indexOf('```mermaid'));
    const details = body.slice(body.indexOf('<details><summary>Per-class metrics'));
    expect(details).toMatch(
      /^<details><summary>Per-class metrics<\/summary>\n\n\| class \| F1 main \| F1 this PR \|/,
    );
    expect(body).toContain('<details><summary>All metrics against the base</summary>\n\n| m | 1 |');
  });
});

describe('distinctTexts numbering', () => {
  it('never numbers a name into one that is already there', async () => {
    const { distinctTexts } = await import('../../lib/report/charts.ts');
    const out = distinctTexts(['a', 'a', 'a (2)']);
    expect(new Set(out).size).toBe(3);
    expect(out[2]).toBe('a (2)');
  });
});

describe('chart names outside the BMP', () => {
  it('are shortened by code point, never leaving half a surrogate pair', async () => {
    const { distinctTexts, mermaidText } = await import('../../lib/report/charts.ts');
    const lone = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    const name = 'run-' + '𠀀'.repeat(60);
    for (let max = 3; max <= 45; max++) {
      const short = mermaidText(name, max);
      expect(lone.test(short), short).toBe(false);
      expect(Array.from(short).length).toBeLessThanOrEqual(max);
    }
    const out = distinctTexts([name + '-1', name + '-2'], 24);
    expect(new Set(out).size).toBe(2);
    for (const t of out) expect(lone.test(t), t).toBe(false);
    // Names alike even by their ends are numbered, and the numbered ones are cut the same way.
    const numbered = distinctTexts([name, name, name], 24);
    expect(new Set(numbered).size).toBe(3);
    for (const t of numbered) {
      expect(lone.test(t), t).toBe(false);
      expect(Array.from(t).length).toBeLessThanOrEqual(24);
    }
  });
});
