/** The source files the architecture checks read. */
import fs from 'node:fs';
import path from 'node:path';

/** The repository these checks read by default. */
export const ROOT = path.resolve(import.meta.dirname, '../..');

/** Source files under `root/dir`, repository-relative, without node_modules. */
export function sourcesUnder(root: string, dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'dist') walk(child);
      } else if (/\.(ts|mts|mjs)$/.test(e.name)) out.push(child);
    }
  };
  walk(dir);
  return out.sort();
}
