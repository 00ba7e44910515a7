/**
 * Headless Chromium (Debian's /usr/bin/chromium) through playwright-core, for tests that render
 * pages. Every request a page makes is recorded; with `offline`, everything but the page's own
 * file and data: URLs is aborted, so a test can assert the page never reached out.
 */
import type { Browser, Page } from 'playwright-core';

export interface RecordingPage {
  page: Page;
  /** Every URL the page requested, in order (data: URLs included). */
  requests: string[];
  /** Console errors and uncaught page errors. */
  errors: string[];
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Closes `browser`, waiting at most `ms`: a Chromium that does not answer its close under a
 * loaded machine failed a whole test file on its afterAll hook's 60 s timeout after every test
 * had passed. Past the bound the browser is left to exit with this process (it is tied to it
 * by its pipe), and the hook goes on with the rest of its clean-up.
 */
export async function closeChromium(browser: Browser | undefined, ms = 20_000): Promise<void> {
  if (!browser) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    browser.close().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** A new page that records requests and errors; with `allow`, any other URL is aborted. */
export async function recordingPage(
  browser: Browser,
  allow?: (url: string) => boolean,
): Promise<RecordingPage> {
  const context = await browser.newContext({ offline: allow !== undefined });
  const page = await context.newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  if (allow) {
    await context.route('**/*', (route) =>
      allow(route.request().url()) ? route.continue() : route.abort('blockedbyclient'),
    );
  }
  return { page, requests, errors };
}
