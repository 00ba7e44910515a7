/**
 * `lockstep ui`: the dashboard served read-only by fastify. Binds 127.0.0.1 unless told
 * otherwise; every response carries a restrictive Content-Security-Policy (scripts and styles
 * only by hash), nosniff, no framing and no referrer. Only GET and HEAD are answered.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { Repo } from '../repo.ts';
import { LockstepError, toOneLine } from '../errors.ts';
import { esc, renderPage, type Page } from './html.ts';
import { compareQuery, Site } from './site.ts';

export interface UiServerOptions {
  /** Bind address (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

function messagePage(title: string, message: string): Page {
  return renderPage({
    page: 'registry',
    title,
    body: `<h1>${esc(title)}</h1><p>${esc(message)}</p><p><a href="index.html">registry</a></p>`,
  });
}

/** Starts the dashboard server; resolves with it and its URL once it listens. */
export async function startUiServer(
  repo: Repo,
  options: UiServerOptions = {},
): Promise<{ app: FastifyInstance; url: string; site: Site }> {
  const site = new Site(repo);
  const app = Fastify({ logger: false });
  const send = (reply: import('fastify').FastifyReply, status: number, page: Page) =>
    reply
      .code(status)
      .headers({ ...SECURITY_HEADERS, 'content-security-policy': page.csp })
      .type('text/html; charset=utf-8')
      .send(page.html);
  app.get('/*', async (req, reply) => {
    const file = req.url.split('?')[0]!.replace(/^\//, '') || 'index.html';
    try {
      const page = await site.page(
        decodeURIComponent(file),
        file === 'compare.html' ? compareQuery(req.query) : {},
      );
      if (!page) return send(reply, 404, messagePage('Not found', `No page ${file} in this dashboard.`));
      return send(reply, 200, page);
    } catch (err) {
      const status = err instanceof LockstepError && err.exitCode === 2 ? 400 : 500;
      return send(reply, status, messagePage(status === 400 ? 'Bad request' : 'Error', toOneLine(err)));
    }
  });
  app.setNotFoundHandler((req, reply) =>
    send(
      reply,
      405,
      messagePage('Not allowed', `${req.method} is not answered: the dashboard is read-only.`),
    ),
  );
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 0 });
  // Read the snapshot now, so the first page does not wait for all of it (errors show on a page).
  site.dashboard().catch(() => {});
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return { app, url: `http://${shown}:${port}`, site };
}
