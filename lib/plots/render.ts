/**
 * Rendering a Vega-Lite spec headless: Vega-Lite `compile` → Vega `View` (renderer `none`)
 * `toSVG()` → resvg for PNG. Each plot is written as `<name>.vl.json` (the spec, for editing and
 * for the dashboard), `<name>.svg` and `<name>.png`.
 */
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../atomic.ts';

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
