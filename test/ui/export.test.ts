/**
 * `lockstep ui --export` into awkward places: a file, a symlink to an earlier export, and the
 * working directory itself (which must survive, not be renamed away and deleted).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildUiRepo, type UiRepo } from '../support/ui-repo.ts';
import { exportSite } from '../../lib/ui/export.ts';
import { repoAt } from '../../lib/repo.ts';

let tmp: string;
let repo: UiRepo;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-ui-export-'));
  repo = await buildUiRepo(path.join(tmp, 'repo'), { models: 2, experiments: 1 });
}, 60_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('ui export', () => {
  it('ui export into a file is refused with its name', async () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'keep');
    await expect(exportSite(repoAt(repo.dir), file)).rejects.toThrow(/^--export: not a directory ".*a-file"/);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep');
  });

  it('ui export through a symlink replaces the site it points at and keeps the link', async () => {
    const real = path.join(tmp, 'real-site');
    const link = path.join(tmp, 'site-link');
    await exportSite(repoAt(repo.dir), real);
    fs.symlinkSync(real, link);
    fs.writeFileSync(path.join(real, 'index.html'), 'stale');
    await exportSite(repoAt(repo.dir), link);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(path.join(real, 'index.html'), 'utf8')).toMatch(/^<!doctype html>/i);
  });

  it('ui export into the working directory keeps that directory', async () => {
    const here = path.join(tmp, 'here');
    await exportSite(repoAt(repo.dir), here);
    const inode = fs.statSync(here).ino;
    fs.writeFileSync(path.join(here, 'lineage-gone.html'), 'from a rewritten commit');
    fs.writeFileSync(path.join(here, 'index.html'), 'stale');
    const res = await exportSite(repoAt(repo.dir), here, { cwd: here });
    expect(fs.statSync(here).ino).toBe(inode);
    expect(fs.readFileSync(path.join(here, 'index.html'), 'utf8')).toMatch(/^<!doctype html>/i);
    expect(fs.existsSync(path.join(here, 'lineage-gone.html'))).toBe(false);
    expect(fs.readdirSync(here).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(fs.readdirSync(here)).toHaveLength(res.files);
  });
});
