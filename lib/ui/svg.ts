/**
 * Vega-Lite → SVG text on the server (no browser, no script in the page). Vega's SVG renderer
 * escapes every text it draws.
 */
import type { TopLevelSpec } from 'vega-lite';

/** Renders `spec` to SVG markup. */
export async function specToSvg(spec: TopLevelSpec): Promise<string> {
  const [{ compile }, vega] = await Promise.all([import('vega-lite'), import('vega')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
