/**
 * The git merge driver for `artifacts.lock.yaml` and its installation. Git runs the driver once
 * per merge that touches the lockfile on both sides (`%O %A %B %P`: base, ours — also where the
 * result goes —, theirs, the path), so this file imports only what the merge needs.
 *
 * Installation is two things: `.gitattributes` says `artifacts.lock.yaml merge=lockstep` (it is
 * committed, so every clone has it) and `.git/config` says what `lockstep` runs (it cannot be
 * committed, so each clone sets it: `lockstep lock install-driver`, or `npm ci`'s postinstall).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { Lockfile } from './types.ts';
import { emptyLockfile, parseLockfile, serializeLockfile } from './lockfile.ts';
import { mergeLockfiles } from './lockfile-merge.ts';

const run = promisify(execFile);

/** The `.gitattributes` line that routes the lockfile to the driver. */
export const GITATTRIBUTES_LINE = 'artifacts.lock.yaml merge=lockstep';

/** The script git runs (absolute, so it works from any directory git starts it in). */
export const DRIVER_SCRIPT = fileURLToPath(new URL('../bin/lockstep-merge-driver.mjs', import.meta.url));

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `merge.lockstep.driver` value: `node '<script>' %O %A %B %P`. Git runs drivers from the
 * top of the work tree, so a script inside it (this repository's bin/, or
 * node_modules/lockstep/bin/) is named relative to it: linked worktrees share `.git/config`, and
 * each then runs its own copy. A script outside the work tree (a global install) is absolute.
 */
export function driverCommand(topLevel?: string, script = DRIVER_SCRIPT): string {
  let shown = script;
  if (topLevel) {
    const rel = path.relative(topLevel, script);
    if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) shown = rel.split(path.sep).join('/');
  }
  return `node ${shellQuote(shown)} %O %A %B %P`;
}

export interface InstallResult {
  /** The git config value written (or already there). */
  driver: string;
  /** True when `.gitattributes` was created or extended. */
  attributesChanged: boolean;
  /** True when `.git/config` changed. */
  configChanged: boolean;
}

async function gitConfigGet(cwd: string, key: string): Promise<string | undefined> {
  try {
    return (await run('git', ['config', '--local', '--get', key], { cwd })).stdout.trim();
  } catch {
    return undefined;
  }
}

/**
 * Installs the driver for the work tree at `root` (a git work tree): the git config lines, and,
 * unless `attributes` is false, the `.gitattributes` line next to the lockfile.
 */
export async function installMergeDriver(
  root: string,
  options: { attributes?: boolean } = {},
): Promise<InstallResult> {
  const topLevel = (await run('git', ['rev-parse', '--show-toplevel'], { cwd: root })).stdout.trim();
  const driver = driverCommand(fs.realpathSync(topLevel), fs.realpathSync(DRIVER_SCRIPT));
  let configChanged = false;
  if ((await gitConfigGet(root, 'merge.lockstep.driver')) !== driver) {
    await run(
      'git',
      ['config', '--local', 'merge.lockstep.name', 'lockstep: merge artifacts.lock.yaml per stage'],
      {
        cwd: root,
      },
    );
    await run('git', ['config', '--local', 'merge.lockstep.driver', driver], { cwd: root });
    configChanged = true;
  }
  let attributesChanged = false;
  if (options.attributes ?? true) {
    const file = path.join(root, '.gitattributes');
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    const present = text
      .split(/\r?\n/)
      .some((l) => /^\/?artifacts\.lock\.yaml\s.*\bmerge=lockstep\b/.test(l.trim()));
    if (!present) {
      const sep = text === '' || text.endsWith('\n') ? '' : '\n';
      fs.writeFileSync(file, `${text}${sep}${GITATTRIBUTES_LINE}\n`);
      attributesChanged = true;
    }
  }
  // Build the driver's bundle now, so the first merge is as fast as the rest (best effort).
  try {
    await run(process.execPath, [DRIVER_SCRIPT, '--prepare'], { timeout: 60_000 });
  } catch {
    // The driver builds it, or loads the sources, itself.
  }
  return { driver, attributesChanged, configChanged };
}

function readSide(file: string, label: string): Lockfile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyLockfile();
    throw err;
  }
  return text.trim() === '' ? emptyLockfile() : parseLockfile(text, label);
}

/**
 * The driver itself: merges base/ours/theirs entry by entry into `ours` and returns git's exit
 * code (0 merged, 1 conflict). When a side cannot be parsed, it falls back to git's line merge
 * (conflict markers; `lockstep lock resolve` then explains). Messages go to stderr, one a line.
 */
export async function runMergeDriver(
  args: string[],
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<number> {
  const [basePath, oursPath, theirsPath, name = 'artifacts.lock.yaml'] = args;
  if (!basePath || !oursPath || !theirsPath) {
    err(
      'lockstep-merge-driver: expected the arguments %O %A %B [%P]. Reinstall with "npx lockstep lock install-driver".',
    );
    return 2;
  }
  let sides: [Lockfile, Lockfile, Lockfile];
  try {
    sides = [
      readSide(basePath, `${name} (base)`),
      readSide(oursPath, `${name} (ours)`),
      readSide(theirsPath, `${name} (theirs)`),
    ];
  } catch (e) {
    err(`${(e as Error).message.split('\n')[0]}`);
    err(
      `${name}: merged line by line instead; run "npx lockstep lock resolve" after fixing the side named above.`,
    );
    try {
      await run('git', [
        'merge-file',
        '-L',
        'ours',
        '-L',
        'base',
        '-L',
        'theirs',
        oursPath,
        basePath,
        theirsPath,
      ]);
    } catch {
      // merge-file exits with the number of conflicts: the markers are in `ours` either way.
    }
    return 1;
  }
  const merge = mergeLockfiles(...sides);
  fs.writeFileSync(oursPath, serializeLockfile(merge.lockfile));
  for (const d of merge.dropped)
    err(`${name}: stage ${d.stage} is stale (${d.reason}); "npx lockstep repro" recomputes it.`);
  for (const c of merge.dataConflicts) {
    err(
      `${name}: data ${c.path} changed on both sides. Put the bytes you want at ${c.path}, run "npx lockstep add ${c.path}", then "git add ${name}".`,
    );
  }
  return merge.dataConflicts.length > 0 ? 1 : 0;
}
