/**
 * HTML building blocks of the dashboard: escaping (every string from git, params and records
 * goes through {@link esc}), JSON embedded in a script tag, and the page shell with its
 * Content-Security-Policy. Scripts and styles are inline and allowed by their sha256 hash, so the
 * same page works served (header) and exported (meta tag, opened from file://).
 */
import { createHash } from 'node:crypto';

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for an HTML text node or a quoted attribute value. */
export function esc(value: unknown): string {
  return String(value ?? '').replace(/[&<>"'`]/g, (c) => ENTITIES[c]!);
}

/**
 * JSON for a `<script type="application/json">` block: `<`, `>`, `&` and the two line
 * separators become \u escapes, so no value can close the tag (`</script>`), open a comment
 * (`<!--`) or start a CDATA section; JSON.parse gives back the same value.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** `'sha256-<base64>'` of an inline script or style, as CSP names it. */
export function cspHash(source: string): string {
  return `'sha256-${createHash('sha256').update(source, 'utf8').digest('base64')}'`;
}

/**
 * The policy of a page whose only script and style are `script` and `style`. `meta`: the form
 * for a `<meta>` tag, without frame-ancestors (browsers ignore it there; the header carries it).
 */
export function contentSecurityPolicy(style: string, script?: string, meta = false): string {
  return [
    "default-src 'none'",
    script ? `script-src ${cspHash(script)}` : "script-src 'none'",
    `style-src ${cspHash(style)}`,
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
    ...(meta ? [] : ["frame-ancestors 'none'"]),
  ].join('; ');
}

export const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#fff}
header{background:#1b1f24;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#c9d1d9;text-decoration:none}header a.on{color:#fff;font-weight:600}
main{padding:12px 16px}h1{font-size:20px;margin:8px 0}h2{font-size:16px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0}th,td{border-bottom:1px solid #d0d7de;padding:3px 8px;text-align:left;white-space:nowrap}
th{background:#f6f8fa;position:sticky;top:0}th[data-col]{cursor:pointer}th.asc::after{content:" \\25B2"}th.desc::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}code,.hash{font-family:ui-monospace,monospace;font-size:12px}
.passed{color:#1a7f37}.failed{color:#cf222e}.unknown{color:#6e7781}.past{color:#6e7781}
.alert{color:#cf222e;font-weight:600}.ok{color:#1a7f37}.muted{color:#6e7781}
.toolbar{display:flex;gap:8px;align-items:center;margin:6px 0}input[type=search]{width:28em;padding:3px}
.wrap{overflow:auto;max-height:75vh}svg text{font-family:system-ui,sans-serif}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:8px 0}
`;

export type PageName = 'registry' | 'environments' | 'experiments' | 'monitoring' | 'lineage' | 'compare';

const NAV: [PageName, string, string][] = [
  ['registry', 'index.html', 'Registry'],
  ['environments', 'environments.html', 'Environments'],
  ['experiments', 'experiments.html', 'Experiments'],
  ['monitoring', 'monitoring.html', 'Monitoring'],
];

export interface Page {
  html: string;
  /** The Content-Security-Policy header value (the same policy is in the page's meta tag). */
  csp: string;
}

/**
 * A whole page: nav, `body` (already escaped HTML), JSON `data` in a script block, and at most
 * one inline `script`. Links are relative file names, the same served and exported.
 */
export function renderPage(options: {
  page: PageName;
  title: string;
  body: string;
  data?: unknown;
  script?: string;
}): Page {
  const csp = contentSecurityPolicy(STYLE, options.script);
  const metaCsp = contentSecurityPolicy(STYLE, options.script, true);
  const nav = NAV.map(
    ([name, href, label]) => `<a href="${href}"${name === options.page ? ' class="on"' : ''}>${label}</a>`,
  ).join('');
  const html = [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${esc(metaCsp)}">`,
    '<meta name="viewport" content="width=device-width,initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${esc(options.title)} · lockstep</title>`,
    `<style>${STYLE}</style></head><body>`,
    `<header><strong>lockstep</strong>${nav}</header>`,
    `<main>${options.body}</main>`,
    options.data === undefined
      ? ''
      : `<script type="application/json" id="data">${jsonForScript(options.data)}</script>`,
    options.script ? `<script>${options.script}</script>` : '',
    '</body></html>',
  ].join('\n');
  return { html, csp };
}

/** A table from escaped header labels and already-escaped cells. */
export function table(head: string[], rows: string[][], attrs = ''): string {
  return `<table${attrs}><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** A short hash in a code span with the full value as its title. */
export function shortHash(hash: string | undefined, n = 12): string {
  if (!hash) return '<span class="muted">none</span>';
  return `<code class="hash" title="${esc(hash)}">${esc(hash.slice(0, n))}</code>`;
}

/** A number for a table cell, 4 decimals, or a dash. */
export function num(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? '' : Number.isInteger(v) ? String(v) : v.toFixed(4);
}

/** The file name of a commit's lineage page. */
export function lineageHref(commit: string): string {
  return `lineage-${commit}.html`;
}
