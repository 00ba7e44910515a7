/**
 * lib/ui sits on top of the core: it may import any lib/ folder, and only lib/cli imports it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])([^'"]+)\1/g;

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'dist') out.push(...sources(rel));
    } else if (/\.(ts|mts|mjs)$/.test(e.name)) out.push(rel);
  }
  return out;
}

describe('ui layering', () => {
  it('ui layering: only lib/cli imports lib/ui', () => {
    const bad: string[] = [];
    let fromCli = 0;
    for (const dir of ['lib', 'stages', 'actions']) {
      for (const file of sources(dir)) {
        if (file.startsWith('lib/ui/')) continue;
        for (const m of fs.readFileSync(path.join(ROOT, file), 'utf8').matchAll(SPECIFIER)) {
          const spec = m[2]!;
          if (!spec.startsWith('.')) continue;
          const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
          if (!target.startsWith('lib/ui/')) continue;
          if (file.startsWith('lib/cli/')) fromCli++;
          else bad.push(`${file} imports ${spec}`);
        }
      }
    }
    expect(fromCli).toBeGreaterThan(0);
    expect(bad).toEqual([]);
  });
});
