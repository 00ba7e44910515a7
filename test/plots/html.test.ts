/**
 * The offline plots page in headless Chromium: every network request is blocked, the page asks
 * for nothing but its own file (and data: URLs), and every plot renders to an SVG.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { buildPlots } from '../../lib/plots/build.ts';
import type { RevisionPlotData } from '../../lib/plots/collect.ts';
import { renderPlotsHtml } from '../../lib/plots/html.ts';
import { closeChromium, launchChromium, recordingPage } from '../support/chromium.ts';

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await closeChromium(browser);
});

const LABELS = ['angry', 'happy', 'sad'];

function revision(rev: string, shift: number, env?: string): RevisionPlotData {
  const metrics: Record<string, number> = { accuracy: 0.5 + shift, f1_macro: 0.6 + shift };
  LABELS.forEach((l, i) => (metrics[`f1.${l}`] = 0.3 + 0.2 * i + shift));
  return {
    rev,
    metrics,
    confusion: {
      labels: LABELS,
      matrix: [
        [3, 1, 0],
        [1, 3 + Math.round(shift * 10), 0],
        [0, 0, 4],
      ],
    },
    history: {
      epochs: [1, 2, 3].map((epoch) => ({
        epoch,
        loss: 1 / epoch + shift,
        acc: 0.3 * epoch,
        val_loss: 1.1 / epoch,
        val_acc: 0.25 * epoch,
      })),
    },
    slices: [
      { slice: 'speaker=OAF', metric: 'f1_macro', value: 0.4 + shift, n: 30, gated: true },
      { slice: 'speaker=YAF', metric: 'f1_macro', value: 0.7 + shift, n: 30, gated: true },
    ],
    ...(env
      ? {
          env,
          monitor: {
            env,
            features: [
              {
                name: 'mfcc_mean_0',
                skew: 0.2,
                bins: { training: [1, 4, 2], previous: null, recent: [2, 2, 3] },
              },
            ],
          },
        }
      : {}),
    notes: [],
  };
}

describe('plots html', () => {
  it('plots html opens offline with no network requests and renders every plot', async () => {
    const plots = buildPlots([revision('main', 0, 'dev'), revision('workspace', 0.1)]);
    expect(plots.map((p) => p.name)).toEqual([
      'learning_curves',
      'confusion',
      'per_class_f1',
      'slices',
      'monitor_dev',
    ]);
    // A title with markup stays text.
    plots[0]!.title = 'Learning curves </script><img src=x onerror=alert(1)>';
    const html = await renderPlotsHtml(plots, { title: 'main vs workspace' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plots-html-'));
    const file = path.join(dir, 'index.html');
    fs.writeFileSync(file, html);
    const url = pathToFileURL(file).href;
    const { page, requests, errors } = await recordingPage(
      browser,
      (u) => u === url || u.startsWith('data:'),
    );
    try {
      await page.goto(url);
      const rendered = await page.evaluate(() => (globalThis as any).lockstepPlots);
      expect(rendered).toEqual(plots.map((p) => p.name));
      expect(await page.locator('.plot svg.marks').count()).toBe(plots.length);
      expect(await page.locator('img').count()).toBe(0);
      expect(requests.filter((u) => u !== url && !u.startsWith('data:'))).toEqual([]);
      expect(errors).toEqual([]);
      fs.mkdirSync('test-output', { recursive: true });
      await page.screenshot({ path: 'test-output/plots-diff.png', fullPage: true });
    } finally {
      await page.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
