/**
 * The dashboard in headless Chromium against a real repository (model history, experiments,
 * a canary on prod, a monitoring report) whose commit subject, branch name, param and canary
 * reason carry markup: every page opens, runs nothing it should not (no dialog, no console
 * error, no CSP violation, no `window.__xss`), and is screenshot into test-output/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { buildUiRepo, HOSTILE, type UiRepo } from '../support/ui-repo.ts';
import { closeChromium } from '../support/chromium.ts';
import { startUiServer } from '../../lib/ui/server.ts';
import { repoAt } from '../../lib/repo.ts';

const CLI = path.resolve(import.meta.dirname, '../../bin/lockstep.mjs');
let tmp: string;
let repo: UiRepo;
let url: string;
let stop: () => Promise<void>;
let browser: Browser;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ui-'));
  repo = await buildUiRepo(path.join(tmp, 'repo'), { models: 12, experiments: 4, hostile: true });
  const server = await startUiServer(repoAt(repo.dir));
  url = server.url;
  // A Chromium that did not close (closeChromium gives up after 20 s on a loaded machine) may
  // still hold connections: they are cut, and the close is bounded like Chromium's.
  stop = async () => {
    server.app.server.closeAllConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      server.app.close(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 20_000);
      }),
    ]);
    clearTimeout(timer);
  };
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  fs.mkdirSync('test-output', { recursive: true });
}, 60_000);

afterAll(async () => {
  await closeChromium(browser);
  await stop?.();
  fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

/** A page that records dialogs, console errors (CSP violations among them) and page errors. */
async function watchedPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return { page, problems };
}

async function expectClean(page: Page, problems: string[]): Promise<void> {
  expect(await page.evaluate('typeof window.__xss')).toBe('undefined');
  // Escaping alone keeps the markup out, CSP aside: no element the hostile strings would make.
  expect(await page.locator('img, iframe, [onerror], [onload]').count()).toBe(0);
  expect(await page.locator('script').count()).toBeLessThanOrEqual(2);
  expect(problems).toEqual([]);
}

describe('ui dashboard', () => {
  it.each([
    ['registry', 'index.html', '#registry'],
    ['environments', 'environments.html', '#env-prod'],
    ['experiments', 'experiments.html', '#exps'],
    ['monitoring', 'monitoring.html', '#monitor-prod svg'],
  ])('ui %s page opens, executes no injected markup and is screenshot', async (name, file, selector) => {
    const res = await fetch(`${url}/${file}`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const { page, problems } = await watchedPage();
    try {
      await page.goto(`${url}/${file}`);
      await page.locator(selector).first().waitFor();
      if (name === 'experiments') await page.waitForSelector('body[data-ready]');
      await page.screenshot({ path: `test-output/ui-${name}.png`, fullPage: true });
      await expectClean(page, problems);
    } finally {
      await page.close();
    }
  });

  it('ui registry shows the hostile subject as text, with models, gates and environments', async () => {
    const { page, problems } = await watchedPage();
    try {
      await page.goto(`${url}/index.html`);
      const text = await page.locator('#registry').innerText();
      expect(text).toContain(HOSTILE.subject);
      expect(await page.locator('#registry img, #registry script').count()).toBe(0);
      // Every dev commit is an entry; prod's head is current there, staging's earlier deploys are past.
      expect(await page.locator('#registry tbody tr').count()).toBeGreaterThanOrEqual(repo.dev.length);
      expect(text).toMatch(/\bprod\b/);
      expect(text).toMatch(/\(staging\)/);
      await expectClean(page, problems);
    } finally {
      await page.close();
    }
  });

  it('ui environments page shows the traffic split, the canary step and its last reasons', async () => {
    const { page, problems } = await watchedPage();
    try {
      await page.goto(`${url}/environments.html`);
      const prod = page.locator('#env-prod');
      expect(await prod.locator('table.split').innerText()).toMatch(/75%[\s\S]*25%/);
      expect(await prod.locator('.canary').innerText()).toContain('step 2 of 4');
      expect(await prod.innerText()).toContain(HOSTILE.reason);
      expect(await prod.innerText()).toContain('not enough requests yet: 12 of 50');
      await expectClean(page, problems);
    } finally {
      await page.close();
    }
  });

  it('ui experiments table sorts by a metric both ways and filters by key>value', async () => {
    const { page, problems } = await watchedPage();
    try {
      await page.goto(`${url}/experiments.html`);
      await page.waitForSelector('body[data-ready]');
      const headers = await page.locator('#exps thead th').allInnerTexts();
      const col = headers.indexOf('accuracy');
      expect(col).toBeGreaterThan(0);
      const column = async () =>
        (await page.locator(`#exps tbody tr:not([hidden]) td:nth-child(${col + 1})`).allInnerTexts())
          .filter(Boolean)
          .map(Number);
      const before = await column();
      await page.locator('#exps th', { hasText: /^accuracy$/ }).click();
      const desc = await column();
      expect(desc).toEqual([...before].sort((a, b) => b - a));
      expect(await page.getAttribute('body', 'data-sorted')).toBe('accuracy:desc');
      await page.locator('#exps th', { hasText: /^accuracy$/ }).click();
      expect(await column()).toEqual([...before].sort((a, b) => a - b));
      expect(Number(await page.getAttribute('body', 'data-sort-ms'))).toBeGreaterThanOrEqual(0);
      await page.fill('#filter', 'accuracy>0.75');
      const shown = await column();
      expect(shown.length).toBe(before.filter((v) => v > 0.75).length);
      expect(shown.length).toBeGreaterThan(0);
      expect(shown.every((v) => v > 0.75)).toBe(true);
      await page.fill('#filter', 'exp-1');
      expect(await page.locator('#exps tbody tr:not([hidden])').count()).toBe(1);
      // The hostile branch is a row whose name is text.
      await page.fill('#filter', '');
      expect(await page.locator('#exps').innerText()).toContain(HOSTILE.branch);
      await expectClean(page, problems);
    } finally {
      await page.close();
    }
  });

  it('ui compare of two selected experiments shows their params and metrics side by side and a chart', async () => {
    const { page, problems } = await watchedPage();
    try {
      await page.goto(`${url}/experiments.html`);
      await page.waitForSelector('body[data-ready]');
      expect(await page.isDisabled('#compare')).toBe(true);
      await page.check('input.sel[value="exp-0"]');
      await page.check('input.sel[value="exp-2"]');
      await page.click('#compare');
      await page.waitForURL(/compare\.html\?exp=exp-0&exp=exp-2$/);
      await page.locator('#comparison .chart svg').waitFor();
      const params = await page.locator('table.params').innerText();
      expect(params).toMatch(/train\.lr ≠\s+0\.0010\s+0\.0030/);
      expect(params).toContain(HOSTILE.param);
      const metrics = await page.locator('table.metrics').innerText();
      expect(metrics).toMatch(/accuracy\s+0\.7000\s+0\.7600/);
      // One bar per experiment and metric in the chart.
      expect(await page.locator('#comparison .chart svg path[aria-roledescription="bar"]').count()).toBe(6);
      await page.screenshot({ path: 'test-output/ui-compare.png', fullPage: true });
      await expectClean(page, problems);
    } finally {
      await page.close();
    }
  });

  it('ui registry entry leads to its lineage: the stage DAG with hashes and why each stage ran', async () => {
    const { page, problems } = await watchedPage();
    try {
      await page.goto(`${url}/index.html`);
      const hostile = repo.dev.at(-1)!;
      await page.click(`a.lineage[href="lineage-${hostile}.html"]`);
      await page.waitForURL(new RegExp(`lineage-${hostile}\\.html$`));
      const dag = page.locator('svg#dag');
      await dag.waitFor();
      const nodes = await dag
        .locator('g.node.stage')
        .evaluateAll((gs) => gs.map((g) => g.getAttribute('data-id')));
      expect(nodes.sort()).toEqual(['data', 'evaluate', 'featurize', 'gate', 'ingest', 'train', 'validate']);
      expect(await dag.locator('path.edge').count()).toBeGreaterThanOrEqual(7);
      const stages = await page.locator('#stages').innerText();
      // Model 12 against model 11: same data and code, train's params changed; data stages did not run.
      expect(stages).toMatch(/train\s.*params changed: train\.epochs/);
      expect(stages).toMatch(/data\s.*code, params and deps unchanged/);
      expect(await page.innerText('main')).toContain(HOSTILE.subject);
      await page.screenshot({ path: 'test-output/ui-lineage.png', fullPage: true });
      await expectClean(page, problems);
    } finally {
      await page.close();
    }
  });

  it('ui experiments table over more rows than it shows sorts all of them and shows all on demand', async () => {
    const many = await buildUiRepo(path.join(tmp, 'many'), { models: 3, experiments: 250 });
    const server = await startUiServer(repoAt(many.dir));
    const { page, problems } = await watchedPage();
    try {
      await page.goto(`${server.url}/experiments.html`);
      await page.waitForSelector('body[data-ready]');
      const total = 250 + 3; // HEAD, dev, staging (three models promote none to prod)
      expect(await page.locator('#exps tbody tr').count()).toBe(200);
      expect(await page.innerText('#count')).toBe(`${total} of ${total} match, first 200 shown`);
      const col = (await page.locator('#exps thead th').allInnerTexts()).indexOf('accuracy') + 1;
      const accuracies = async () =>
        (await page.locator(`#exps tbody tr td:nth-child(${col})`).allInnerTexts()).map(Number);
      const rendered = await page
        .locator('#exps tbody input.sel')
        .evaluateAll((bs) => bs.map((b) => b.getAttribute('value')));
      // A row the server did not render is built from the data when a filter finds it.
      const unrendered = many.experiments.find((n) => !rendered.includes(n))!;
      expect(unrendered).toBeDefined();
      await page.fill('#filter', `name=${unrendered}`);
      expect(await page.locator('#exps tbody tr').count()).toBe(1);
      const i = Number(unrendered.slice('exp-'.length));
      expect(await accuracies()).toEqual([Number((0.6 + ((i * 37) % 300) / 1000).toFixed(4))]);
      await page.fill('#filter', '');
      await page.locator('#exps th', { hasText: /^accuracy$/ }).click();
      const top = await accuracies();
      await page.click('#more');
      expect(await page.locator('#exps tbody tr').count()).toBe(total);
      expect(await page.isHidden('#more')).toBe(true);
      // The 200 shown after the sort were the best of all rows, in order.
      const all = await accuracies();
      expect(all).toEqual([...all].sort((x, y) => y - x));
      expect(top).toEqual(all.slice(0, 200));
      await expectClean(page, problems);
    } finally {
      await page.close();
      await server.app.close();
    }
  }, 60_000);

  it('ui server answers unknown pages 404, bad compare requests 400 and writes 405', async () => {
    expect((await fetch(`${url}/nope.html`)).status).toBe(404);
    expect((await fetch(`${url}/lineage-${'0'.repeat(40)}.html`)).status).toBe(404);
    expect((await fetch(`${url}/compare.html?exp=exp-0&exp=missing`)).status).toBe(400);
    const post = await fetch(`${url}/index.html`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('content-security-policy')).toContain("default-src 'none'");
  });

  it('ui --export writes a static site that works from file:// with the same safety', async () => {
    const out = path.join(tmp, 'site');
    const res = await runCli(['ui', '--export', out, '--json'], repo.dir);
    expect(res.code).toBe(0);
    const summary = JSON.parse(res.stdout) as { files: number; registry: number };
    expect(fs.existsSync(path.join(out, 'index.html'))).toBe(true);
    for (const f of fs.readdirSync(out).filter((f) => f.endsWith('.html')))
      expect(fs.readFileSync(path.join(out, f), 'utf8')).toMatch(
        /<meta http-equiv="Content-Security-Policy"/,
      );
    expect(fs.readdirSync(out).filter((f) => f.startsWith('lineage-')).length).toBe(summary.registry);
    const { page, problems } = await watchedPage();
    try {
      await page.goto(pathToFileURL(path.join(out, 'index.html')).href);
      await page.click(`a.lineage[href="lineage-${repo.dev.at(-1)}.html"]`);
      await page.locator('svg#dag').waitFor();
      await page.click('header a[href="experiments.html"]');
      await page.waitForSelector('body[data-ready]');
      await page.locator('#exps th', { hasText: /^accuracy$/ }).click();
      expect(await page.getAttribute('body', 'data-sorted')).toBe('accuracy:desc');
      await page.check('input.sel[value="exp-1"]');
      await page.check('input.sel[value="exp-3"]');
      await page.click('#compare');
      await page.waitForSelector('body[data-ready]');
      expect(await page.locator('#comparison').innerText()).toMatch(/accuracy\s+0\.7300\s+0\.7900/);
      await page.screenshot({ path: 'test-output/ui-export-compare.png', fullPage: true });
      for (const f of ['environments.html', 'monitoring.html']) {
        await page.goto(pathToFileURL(path.join(out, f)).href);
        await page.locator('main h1').waitFor();
      }
      await expectClean(page, problems);
    } finally {
      await page.close();
    }
    // A directory that is not an earlier export is never overwritten.
    const other = path.join(tmp, 'other');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'keep.txt'), 'mine');
    const refused = await runCli(['ui', '--export', other], repo.dir);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/not empty and not an earlier dashboard export/);
    expect(fs.readdirSync(other)).toEqual(['keep.txt']);
    // An earlier export is replaced.
    expect((await runCli(['ui', '--export', out], repo.dir)).code).toBe(0);
  }, 60_000);

  it('ui command binds 127.0.0.1 by default and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, 'ui', '--json'], {
      cwd: repo.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\n')) resolve(buf.split('\n')[0]!);
        });
        child.once('exit', (code) => reject(new Error(`ui exited ${code}`)));
      });
      const served = new URL((JSON.parse(line) as { url: string }).url);
      expect(served.hostname).toBe('127.0.0.1');
      expect((await fetch(`${served.origin}/experiments.html`)).status).toBe(200);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 30_000);
});

function runCli(
  args: string[],
  cwd: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
