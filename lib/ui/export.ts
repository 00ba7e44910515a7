/**
 * `lockstep ui --export <dir>`: the dashboard as a static site (relative links, a CSP meta tag
 * in every page, opens from file:// or GitHub Pages). Every page is rendered before anything is
 * written; the site is written to a temporary sibling directory and renamed into place, so a
 * failure leaves the previous export (or nothing) and never half a site. A symlink is followed
 * (the link keeps pointing at the new site); when the directory is the caller's working directory
 * (or holds it), it cannot be renamed away under them, so each page is replaced in place instead
 * (atomic per file) and pages of the earlier export that are gone are removed.
 */
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { mkdir, rename, rm, unlink, writeFile } from 'node:fs/promises';
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

export interface ExportOptions {
  /** The caller's working directory (`process.cwd()` is always considered too); see the module comment. */
  cwd?: string;
}

function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/** Writes the static site into `dir` (absent, empty, or an earlier export). */
export async function exportSite(
  repo: Repo,
  dir: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  let target = path.resolve(dir);
  let inPlace = false;
  let previous: string[] = [];
  if (existsSync(target)) {
    if (!statSync(target).isDirectory())
      throw new LockstepError(`--export: not a directory "${target}". Pass a new or empty directory.`);
    target = realpathSync(target);
    const cwds = [process.cwd(), ...(options.cwd ? [options.cwd] : [])];
    inPlace = cwds.some((c) => existsSync(c) && isInside(realpathSync(c), target));
    const names = readdirSync(target);
    previous = names;
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
  if (inPlace) {
    const suffix = `.tmp-${process.pid}`;
    try {
      for (const [name, text] of files) await writeFile(path.join(target, name + suffix), text);
      for (const name of files.keys())
        await rename(path.join(target, name + suffix), path.join(target, name));
    } catch (err) {
      for (const name of files.keys()) await rm(path.join(target, name + suffix), { force: true });
      throw err;
    }
    // Pages of the earlier export this one no longer has (a lineage of a rewritten commit).
    for (const name of previous)
      if (!files.has(name) && /\.html$/.test(name)) await unlink(path.join(target, name)).catch(() => {});
    return { dir: target, files: files.size, registry: d.registry.length, experiments: d.experiments.length };
  }
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
