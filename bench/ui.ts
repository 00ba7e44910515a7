/**
 * ui: the experiments page of `lockstep ui` with 1,000 experiments and about 500 registry
 * entries, in headless Chromium. `lockstep ui` is spawned as a user runs it (a whole
 * `node bin/lockstep.mjs ui` process); the figures are:
 *
 * - `start_seconds`: spawn until the server prints its address (median of the rounds).
 * - `first_tti_ms`: navigation start until the page's script is ready (`body[data-ready]`) on the
 *   first request after start, which reads the repository (median over fresh servers).
 * - `tti_ms`: the same on a running server (the snapshot is read; median of ROUNDS loads).
 * - `sort_ms`: one click on a metric header until the rows are reordered and laid out (the page
 *   reports it; median of 2 x ROUNDS clicks alternating direction).
 * - baseline: the same table as a static page without any script, served over HTTP on
 *   127.0.0.1 from memory; `static_ms` is navigation start until DOMContentLoaded, and
 *   `static_reorder_ms` the time to put its shown rows in reverse order and lay it out (the
 *   least a sort has to do). `tti_ratio_vs_static` is tti_ms / static_ms,
 *   `sort_ratio_vs_static_reorder` sort_ms / static_reorder_ms.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildUiRepo } from '../test/support/ui-repo.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Spawns `lockstep ui --json` in `dir`; resolves with its URL, the start-up time and a stop. */
async function startUi(dir: string): Promise<{ url: string; seconds: number; stop: () => Promise<void> }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'lockstep.mjs'), 'ui', '--json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0]!) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`lockstep ui exited ${code}: ${stderr.slice(-500)}`)));
  });
  const seconds = (performance.now() - t0) / 1000;
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  return { url, seconds, stop };
}

/** Milliseconds from navigation start until the page's script is ready. */
async function loadExperiments(browser: Browser, url: string): Promise<{ page: Page; ms: number }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${url}/experiments.html`);
  await page.waitForSelector('body[data-ready]');
  return { page, ms: Number(await page.getAttribute('body', 'data-ready')) };
}

export default async function uiBench(): Promise<Record<string, number | string>> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-ui-'));
  const figures: Record<string, number | string> = {
    load_average_1m_start: Number(os.loadavg()[0]!.toFixed(1)),
  };
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  let baseline: http.Server | undefined;
  try {
    const dir = path.join(tmp, 'repo');
    const t0 = performance.now();
    // 500 dev models (registry entries), every 5th of the older half promoted to staging, every 5th of those to prod.
    await buildUiRepo(dir, { models: 500, experiments: 1000, promoteEvery: 5 });
    figures.build_seconds = Number(((performance.now() - t0) / 1000).toFixed(2));
    const starts: number[] = [];
    const firsts: number[] = [];
    const ttis: number[] = [];
    const sorts: number[] = [];
    let html = '';
    for (let r = 0; r < ROUNDS; r++) {
      const ui = await startUi(dir);
      try {
        starts.push(ui.seconds);
        const first = await loadExperiments(browser, ui.url);
        firsts.push(first.ms);
        await first.page.close();
        if (r === 0) {
          const res = await fetch(`${ui.url}/experiments.html`);
          html = await res.text();
          const registry = await (await fetch(`${ui.url}/index.html`)).text();
          figures.registry_entries = (registry.match(/class="lineage"/g) ?? []).length;
        }
        const { page, ms } = await loadExperiments(browser, ui.url);
        ttis.push(ms);
        figures.experiment_rows_shown = await page.locator('#exps tbody tr').count();
        figures.experiment_rows = Number((await page.innerText('#count')).split(' ')[0]);
        const header = page.locator('#exps th', { hasText: /^accuracy$/ });
        for (let k = 0; k < 2; k++) {
          // The handler runs inside the click's dispatch, so the figure is there when it returns.
          await header.click();
          sorts.push(Number(await page.getAttribute('body', 'data-sort-ms')));
        }
        await page.close();
      } finally {
        await ui.stop();
      }
    }
    // The baseline: the same table, no script, no data block, served from memory.
    const plain = html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<meta http-equiv[^>]*>/, '');
    baseline = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(plain);
    });
    await new Promise<void>((resolve) => baseline!.listen(0, '127.0.0.1', resolve));
    const port = (baseline.address() as { port: number }).port;
    const statics: number[] = [];
    const reorders: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(`http://127.0.0.1:${port}/`);
      statics.push(
        (await page.evaluate(
          "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd",
        )) as number,
      );
      // The least any sort must do: put the shown rows in another order and lay the table out.
      for (let k = 0; k < 2; k++)
        reorders.push(
          (await page.evaluate(`(() => {
            const t0 = performance.now();
            const tbody = document.querySelector('#exps tbody');
            const rows = Array.from(tbody.rows).reverse();
            const frag = document.createDocumentFragment();
            for (const r of rows) frag.appendChild(r);
            tbody.appendChild(frag);
            void tbody.offsetHeight;
            return performance.now() - t0;
          })()`)) as number,
        );
      await page.close();
    }
    const tti = median(ttis);
    const stat = median(statics);
    Object.assign(figures, {
      start_seconds: Number(median(starts).toFixed(3)),
      first_tti_ms: Number(median(firsts).toFixed(1)),
      tti_ms: Number(tti.toFixed(1)),
      static_ms: Number(stat.toFixed(1)),
      tti_ratio_vs_static: Number((tti / stat).toFixed(2)),
      sort_ms: Number(median(sorts).toFixed(1)),
      sort_max_ms: Number(Math.max(...sorts).toFixed(1)),
      static_reorder_ms: Number(median(reorders).toFixed(1)),
      sort_ratio_vs_static_reorder: Number((median(sorts) / median(reorders)).toFixed(2)),
      page_kib: Math.round(Buffer.byteLength(html) / 1024),
      interactive_within_1s: tti < 1000 ? 'yes' : 'no',
      first_interactive_within_1s: median(firsts) < 1000 ? 'yes' : 'no',
      sort_within_100ms: median(sorts) < 100 ? 'yes' : 'no',
      rounds: ROUNDS,
      load_average_1m_end: Number(os.loadavg()[0]!.toFixed(1)),
    });
    return figures;
  } finally {
    await browser.close();
    if (baseline) await new Promise((resolve) => baseline!.close(resolve));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
