/**
 * Plain-text and Markdown tables for command output and PR comments.
 */

export interface TableOptions {
  /** Render as a GitHub-flavoured Markdown table instead of aligned text. */
  markdown?: boolean;
  /** Columns (by index) aligned right (numbers). */
  right?: number[];
}

/** Renders `rows` under `headers`. Cells are stringified; missing cells are empty. */
export function renderTable(headers: string[], rows: unknown[][], options: TableOptions = {}): string {
  const cells = rows.map((r) =>
    headers.map((_, i) => (r[i] === undefined || r[i] === null ? '' : String(r[i]))),
  );
  const right = new Set(options.right ?? []);
  if (options.markdown) {
    const esc = (s: string) => s.replace(/\|/g, '\\|');
    const head = `| ${headers.map(esc).join(' | ')} |`;
    const sep = `|${headers.map((_, i) => (right.has(i) ? '---:' : '---')).join('|')}|`;
    return [head, sep, ...cells.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n');
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}
