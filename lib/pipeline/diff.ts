/**
 * Params and metrics diffs between two revisions (or a revision and the workspace), as rows and
 * as a table: plain text for the terminal, Markdown for PR comments. Pure functions: the PR
 * report reuses them.
 */
import { canonicalJson } from './fingerprint.ts';

export interface DiffRow {
  key: string;
  /** Old and new values, undefined when absent on that side. */
  old: unknown;
  new: unknown;
  /** new - old, when both are numbers. */
  delta?: number;
  /** Relative change in percent, when both are numbers and old is not 0. */
  pct?: number;
}

/** Flattens nested params into dotted keys; arrays stay whole values (compared as JSON). */
export function flattenParams(
  value: unknown,
  prefix = '',
  into: Record<string, unknown> = {},
): Record<string, unknown> {
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) flattenParams(v, prefix ? `${prefix}.${k}` : k, into);
  } else if (prefix) {
    into[prefix] = value;
  }
  return into;
}

function numericDelta(a: unknown, b: unknown): { delta?: number; pct?: number } {
  if (typeof a !== 'number' || typeof b !== 'number') return {};
  const delta = b - a;
  return a !== 0 ? { delta, pct: (delta / Math.abs(a)) * 100 } : { delta };
}

/**
 * Changed params between `a` and `b` (nested objects), sorted by key. With `all`, unchanged keys
 * are listed too.
 */
export function diffParams(a: unknown, b: unknown, options: { all?: boolean } = {}): DiffRow[] {
  const fa = flattenParams(a ?? {});
  const fb = flattenParams(b ?? {});
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  const rows: DiffRow[] = [];
  for (const key of keys) {
    const same = canonicalJson(fa[key]) === canonicalJson(fb[key]);
    if (same && !options.all) continue;
    const { delta } = numericDelta(fa[key], fb[key]);
    rows.push({ key, old: fa[key], new: fb[key], ...(delta !== undefined ? { delta } : {}) });
  }
  return rows;
}

/** Metrics rows (flat maps of numbers) with delta and %, sorted by key. With `all`, unchanged too. */
export function diffMetrics(
  a: Record<string, number> | undefined,
  b: Record<string, number> | undefined,
  options: { all?: boolean } = { all: true },
): DiffRow[] {
  const ma = a ?? {};
  const mb = b ?? {};
  const keys = [...new Set([...Object.keys(ma), ...Object.keys(mb)])].sort();
  const rows: DiffRow[] = [];
  for (const key of keys) {
    if (!options.all && ma[key] === mb[key]) continue;
    rows.push({ key, old: ma[key], new: mb[key], ...numericDelta(ma[key], mb[key]) });
  }
  return rows;
}

/** Formats a value for a table cell: numbers to at most 6 significant digits, `-` for absent. */
export function formatValue(v: unknown): string {
  if (v === undefined) return '-';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function formatDelta(d: number | undefined): string {
  if (d === undefined) return '';
  const s = formatValue(d);
  return d > 0 ? `+${s}` : s;
}

function formatPct(p: number | undefined): string {
  if (p === undefined) return '';
  return `${p > 0 ? '+' : ''}${p.toFixed(1)}%`;
}

export interface RenderOptions {
  /** Markdown table (for PR comments) instead of aligned text. Default false. */
  markdown?: boolean;
  /** Column headers for the old and new values. Default `old`, `new`. */
  labels?: [string, string];
  /** What the first column is called. Default `key`. */
  keyHeader?: string;
}

/** Renders rows as a table; includes a `%` column when any row has one. Empty rows → "no changes". */
export function renderDiffTable(rows: DiffRow[], options: RenderOptions = {}): string {
  const [oldLabel, newLabel] = options.labels ?? ['old', 'new'];
  const withPct = rows.some((r) => r.pct !== undefined);
  const header = [options.keyHeader ?? 'key', oldLabel, newLabel, 'delta', ...(withPct ? ['%'] : [])];
  if (rows.length === 0) return options.markdown ? '_No changes._' : 'no changes';
  const body = rows.map((r) => [
    r.key,
    formatValue(r.old),
    formatValue(r.new),
    formatDelta(r.delta),
    ...(withPct ? [formatPct(r.pct)] : []),
  ]);
  if (options.markdown) {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    const line = (cells: string[]) => `| ${cells.map(esc).join(' | ')} |`;
    const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
    return [line(header), `|${align.join('|')}|`, ...body.map(line)].join('\n');
  }
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...body.map(line)].join('\n');
}
