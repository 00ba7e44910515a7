/**
 * `lockstep ui --export <dir>`: the dashboard as a static site (relative links, a CSP meta tag
 * in every page, opens from file:// or GitHub Pages). Every page is rendered before anything is
 * written; the site is written to a temporary sibling directory and renamed into place, so a
 * failure leaves the previous export (or nothing) and never half a site.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import { LockstepError } from '../errors.ts';
import { lineageHref } from './html.ts';
import { PAGES, Site } from './site.ts';

/** Marks a directory as an export, so a later export may replace it. */
const MARKER = '.lockstep-ui';

export interface ExportResult {
  dir: string;
  files: number;
  registry: number;
  experiments: number;
}

/** Writes the static site into `dir` (absent, empty, or an earlier export). */
export async function exportSite(repo: Repo, dir: string): Promise<ExportResult> {
  const target = path.resolve(dir);
  if (existsSync(target)) {
    const names = readdirSync(target);
    if (names.length > 0 && !names.includes(MARKER))
      throw new LockstepError(
        `${target}: not empty and not an earlier dashboard export. Pass an empty or new directory.`,
      );
  }
  const site = new Site(repo);
  const d = await site.dashboard();
  const files = new Map<string, string>();
  for (const name of [...PAGES, 'compare.html']) files.set(name, (await site.page(name))!.html);
  for (const view of await site.allLineages())
    files.set(lineageHref(view.commit), (await site.page(lineageHref(view.commit)))!.html);
  files.set(MARKER, `lockstep ui export ${d.generatedAt}\n`);
  // GitHub Pages: serve the files as they are.
  files.set('.nojekyll', '');
  const tmp = `${target}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    for (const [name, text] of files) await writeFile(path.join(tmp, name), text);
    const old = `${target}.old-${process.pid}`;
    if (existsSync(target)) await rename(target, old);
    await rename(tmp, target);
    await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
  return { dir: target, files: files.size, registry: d.registry.length, experiments: d.experiments.length };
}
