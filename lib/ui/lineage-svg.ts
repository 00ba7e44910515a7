/**
 * The stage graph of a commit drawn as an SVG DAG, server-side: nodes are stages and the raw
 * data they read, placed in layers by longest path from a source (a layered layout in the
 * manner of Sugiyama, with each layer ordered by the mean position of its parents to keep edges
 * short), edges are cubic curves labelled by nothing but their ends. Every label is escaped.
 */
import { esc } from './html.ts';
import type { LineageView } from './data.ts';

const W = 230;
const H = 64;
const GAP_X = 70;
const GAP_Y = 22;

interface Node {
  id: string;
  kind: 'stage' | 'data';
  layer: number;
  row: number;
  lines: string[];
  cls: string;
}

/** Lays out and draws `lineage`; returns SVG markup. */
export function lineageSvg(lineage: LineageView): string {
  const stages = Object.keys(lineage.code);
  const ids = new Set<string>(stages);
  for (const e of lineage.edges) ids.add(e.from);
  const parents = new Map<string, Set<string>>([...ids].map((id) => [id, new Set<string>()]));
  for (const e of lineage.edges) if (e.from !== e.to) parents.get(e.to)!.add(e.from);
  // Longest path from a source; a cycle (never in a valid lockfile) is cut by the depth bound.
  const layer = new Map<string, number>();
  const depth = (id: string, guard = 0): number => {
    const known = layer.get(id);
    if (known !== undefined) return known;
    const ps = [...parents.get(id)!];
    const d = ps.length === 0 || guard > ids.size ? 0 : 1 + Math.max(...ps.map((p) => depth(p, guard + 1)));
    layer.set(id, d);
    return d;
  };
  for (const id of ids) depth(id);
  const layers: string[][] = [];
  for (const id of ids) (layers[layer.get(id)!] ??= []).push(id);
  const row = new Map<string, number>();
  layers.forEach((ls, i) => {
    if (i > 0) {
      const mean = (id: string) => {
        const ps = [...parents.get(id)!].map((p) => row.get(p) ?? 0);
        return ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : 0;
      };
      ls.sort((a, b) => mean(a) - mean(b) || (a < b ? -1 : 1));
    } else ls.sort();
    ls.forEach((id, r) => row.set(id, r));
  });
  const nodes = new Map<string, Node>();
  for (const id of ids) {
    const isStage = lineage.code[id] !== undefined;
    const reason = lineage.reasons[id];
    const lines = isStage
      ? [
          id,
          `code ${lineage.code[id]!.slice(0, 12)}`,
          ...(lineage.outs[id] ?? []).slice(0, 1).map((o) => `out ${o.hash.slice(0, 12)}`),
        ]
      : [id, `data ${(lineage.data[id] ?? '').slice(0, 12)}`];
    nodes.set(id, {
      id,
      kind: isStage ? 'stage' : 'data',
      layer: layer.get(id)!,
      row: row.get(id)!,
      lines,
      cls: isStage ? (reason?.state ?? 'unchanged') : 'data',
    });
  }
  const x = (n: Node) => 10 + n.layer * (W + GAP_X);
  const y = (n: Node) => 10 + n.row * (H + GAP_Y);
  const width = 20 + layers.length * (W + GAP_X) - GAP_X;
  const height = 20 + Math.max(1, ...layers.map((l) => l.length)) * (H + GAP_Y) - GAP_Y;
  const fill: Record<string, string> = {
    changed: '#fff8c5',
    new: '#dafbe1',
    root: '#ddf4ff',
    unchanged: '#f6f8fa',
    data: '#ffffff',
  };
  const parts: string[] = [];
  const drawn = new Set<string>();
  for (const e of lineage.edges) {
    const a = nodes.get(e.from);
    const b = nodes.get(e.to);
    const key = `${e.from}\n${e.to}`;
    if (!a || !b || a === b || drawn.has(key)) continue;
    drawn.add(key);
    const x1 = x(a) + W;
    const y1 = y(a) + H / 2;
    const x2 = x(b);
    const y2 = y(b) + H / 2;
    const mid = (x1 + x2) / 2;
    parts.push(
      `<path class="edge" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2 - 6},${y2}" fill="none" stroke="#8c959f" stroke-width="1.5" marker-end="url(#arrow)"><title>${esc(e.path)}</title></path>`,
    );
  }
  for (const n of nodes.values()) {
    const reason = lineage.reasons[n.id];
    const text = n.lines
      .map(
        (l, i) =>
          `<text x="${x(n) + 8}" y="${y(n) + 18 + i * 15}" font-size="${i === 0 ? 13 : 11}"${i === 0 ? ' font-weight="600"' : ' font-family="monospace"'}>${esc(l.length > 34 ? l.slice(0, 33) + '…' : l)}</text>`,
      )
      .join('');
    parts.push(
      `<g class="node ${n.kind}" data-id="${esc(n.id)}"><title>${esc(n.id)}${reason ? ': ' + esc(reason.reason) : ''}</title>` +
        `<rect x="${x(n)}" y="${y(n)}" width="${W}" height="${H}" rx="6" fill="${fill[n.cls] ?? '#fff'}" stroke="#57606a"${n.kind === 'data' ? ' stroke-dasharray="4 3"' : ''}/>${text}</g>`,
    );
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" id="dag" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="stage graph">` +
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>` +
    parts.join('') +
    '</svg>'
  );
}
