/**
 * `lockstep add`: hash paths into the cache, record them under `data:` in the lockfile and
 * git-ignore them. Objects first, lockfile second, `.gitignore` last, each write atomic, so a
 * crash at any point leaves a valid cache and either the old or the new lockfile; a failure
 * removes the objects this run created and leaves the lockfile untouched. `cache.type` in the
 * config chooses how bytes enter the cache (cache-type.ts).
 */
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { ArtifactRef } from '../types.ts';
import type { Output } from '../output.ts';
import { readLockfile, writeLockfile } from '../lockfile.ts';
import { Cache } from './cache.ts';
import { commitArtifact } from './artifacts.ts';
import { toRepoPath, validateRepoPath } from './paths.ts';
import { chooseCacheLink, readCacheTypes } from './cache-type.ts';
import { writeFileAtomic } from '../atomic.ts';
import { LockstepError, formatProblem } from '../errors.ts';

export interface AddOptions {
  /** Directory the paths are relative to (default: repository root). */
  cwd?: string;
  out?: Output;
  signal?: AbortSignal;
}

/** Adds `inputs` and returns their refs (in input order). */
export async function addPaths(
  repo: Repo,
  inputs: string[],
  options: AddOptions = {},
): Promise<ArtifactRef[]> {
  const rels = [...new Set(inputs.map((p) => toRepoPath(repo, p, options.cwd ?? repo.root)))];
  const lock = readLockfile(repo);
  for (const rel of rels) {
    const outOf = Object.entries(lock.stages).find(([, s]) => s.outs.some((o) => o.path === rel));
    if (outOf) {
      throw new LockstepError(
        formatProblem(
          rel,
          `is an output of stage "${outOf[0]}"`,
          rel,
          'Stage outputs are tracked by lockstep repro; add source data only.',
        ),
      );
    }
  }
  // Every path must exist before any is committed: a typo in the last one would otherwise fail
  // after the first ones were linked (with cache.type hardlink, made read-only) and rolled back.
  for (const rel of rels) {
    validateRepoPath(repo, rel);
    try {
      fs.statSync(path.join(repo.root, rel));
    } catch (err) {
      // Other failures (a symlink loop) get their own message when the path is scanned.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new LockstepError(
          formatProblem(rel, 'path does not exist', rel, 'Create it or check the spelling.'),
        );
    }
  }
  const cache = new Cache(repo, { out: options.out });
  const types = readCacheTypes(repo);
  const link = chooseCacheLink(repo, types, path.dirname(cache.tempPath()));
  // A file the chosen link cannot reach (a mount inside the workspace) falls through to copy
  // when the list allows it, as the probe's choice would have.
  const linkFallback = types.slice(types.indexOf(link) + 1).includes('copy');
  const refs: ArtifactRef[] = [];
  try {
    for (const rel of rels) {
      const prior = lock.data[rel];
      refs.push(
        await commitArtifact(repo, rel, {
          cache,
          link,
          linkFallback,
          out: options.out,
          signal: options.signal,
          ...(prior ? { previous: { ...prior, path: rel } } : {}),
        }),
      );
    }
  } catch (err) {
    // Leave the cache as it was: drop only the objects this run created.
    for (const oid of cache.inserted) fs.rmSync(cache.objectPath(oid), { force: true });
    throw err;
  }
  for (const ref of refs) {
    const { path: p, ...rest } = ref;
    lock.data[p] = rest;
  }
  await writeLockfile(repo, lock);
  await ignorePaths(repo, rels);
  warnIfGitTracked(repo, rels, options.out);
  return refs;
}

/** Ignoring a path git already tracks does not untrack it: say how to. */
function warnIfGitTracked(repo: Repo, rels: string[], out: Output | undefined): void {
  if (!out || !fs.existsSync(path.join(repo.root, '.git'))) return;
  const r = spawnSync('git', ['ls-files', '-z', '--', ...rels], { cwd: repo.root, encoding: 'utf8' });
  if (r.status !== 0) return;
  for (const rel of rels) {
    if (r.stdout.split('\0').some((f) => f === rel || f.startsWith(rel + '/'))) {
      out.err(
        formatProblem(
          rel,
          'is also tracked by git',
          rel,
          `Run git rm -r --cached ${rel} so only the lockfile pins it.`,
        ),
      );
    }
  }
}

/**
 * `rel` as a .gitignore pattern matching only that path: glob characters and a backslash are
 * escaped (a file named `[ab]*` must not ignore `a`, nor stay unignored itself), and so are
 * trailing spaces, which git would otherwise strip.
 */
export function gitignoreLiteral(rel: string): string {
  return rel.replace(/[\\*?[]/g, '\\$&').replace(/ +$/, (spaces) => spaces.replace(/ /g, '\\ '));
}

/** Appends `/<rel>` lines to the root `.gitignore` for paths not already listed. */
export async function ignorePaths(repo: Repo, rels: string[]): Promise<void> {
  const file = path.join(repo.root, '.gitignore');
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const lines = new Set(text.split('\n').map((l) => l.trim()));
  const added = rels
    .map((r) => `/${gitignoreLiteral(r)}`)
    .filter((l) => !lines.has(l) && !lines.has(l.slice(1)));
  if (added.length === 0) return;
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  await writeFileAtomic(file, `${text}${sep}${added.join('\n')}\n`, { tmpDir: repo.tmpDir });
}
