/**
 * One self-contained HTML page of Vega-Lite plots that works offline: the vega, vega-lite and
 * vega-embed browser builds are inlined from node_modules, the specs are inlined as JSON, and
 * nothing is fetched (no CDN, no fonts, no images). Rendering uses SVG, so the page prints well.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { LockstepError } from '../errors.ts';
import type { NamedPlot } from './build.ts';

/** The browser builds inlined into the page, in load order (vega-lite and embed need vega). */
const BUNDLES: [pkg: string, file: string][] = [
  ['vega', 'build/vega.min.js'],
  ['vega-lite', 'build/vega-lite.min.js'],
  ['vega-embed', 'build/vega-embed.min.js'],
];

/** The package's directory: the node_modules folder holding `pkg` (exports hide its files). */
function packageDir(pkg: string): string {
  const require = createRequire(import.meta.url);
  let dir = path.dirname(require.resolve(pkg));
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) !== pkg) {
    const up = path.dirname(dir);
    if (up === dir) throw new LockstepError(`${pkg}: package directory not found. Run npm ci.`);
    dir = up;
  }
  return dir;
}

let bundles: Promise<string[]> | undefined;

/** The three browser builds' source text, read once per process. */
function readBundles(): Promise<string[]> {
  bundles ??= Promise.all(BUNDLES.map(([pkg, file]) => readFile(path.join(packageDir(pkg), file), 'utf8')));
  return bundles;
}

/** Text made safe inside a `<script>` element: no `</script` or `<!--` can end it early. */
function scriptSafe(text: string): string {
  return text.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface HtmlOptions {
  title: string;
  /** Lines shown under the title (revisions compared, what was missing). */
  notes?: string[];
}

/** The page for `plots` (see the module comment). */
export async function renderPlotsHtml(plots: NamedPlot[], options: HtmlOptions): Promise<string> {
  const libs = await readBundles();
  // JSON in a script: `<` escaped so a string in a spec can never close the element.
  const specs = JSON.stringify(plots.map((p) => ({ name: p.name, spec: p.spec }))).replace(/</g, '\\u003c');
  const sections = plots
    .map(
      (p) =>
        `<section><h2>${escapeHtml(p.title)}</h2><div class="plot" id="plot-${escapeHtml(p.name)}"></div></section>`,
    )
    .join('\n');
  const notes = (options.notes ?? []).map((n) => `<li>${escapeHtml(n)}</li>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(options.title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #1f2328; }
section { margin: 1.5rem 0; }
h2 { font-size: 1.1rem; }
.error { color: #cf222e; }
</style>
${libs.map((src) => `<script>${scriptSafe(src)}</script>`).join('\n')}
</head>
<body>
<h1>${escapeHtml(options.title)}</h1>
${notes ? `<ul class="notes">${notes}</ul>` : ''}
${sections}
<script>
const plots = ${specs};
window.lockstepPlots = Promise.all(plots.map((p) =>
  vegaEmbed('#plot-' + p.name, p.spec, { renderer: 'svg', actions: false }).then(
    () => p.name,
    (err) => {
      document.getElementById('plot-' + p.name).innerHTML = '<p class="error"></p>';
      document.querySelector('#plot-' + p.name + ' .error').textContent = String(err);
      throw err;
    },
  ),
));
</script>
</body>
</html>
`;
}
