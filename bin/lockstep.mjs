#!/usr/bin/env node
// Entry for `npx lockstep`. Runs the compiled CLI (dist/cli/, built by lib/cli/build.mjs during
// `npm ci` through the `prepare` script) when it is fresh: every source file compiled into it
// still has the mtime, size and ctime recorded at build time. After an edit it recompiles first (a
// second or less), and when it cannot (no esbuild, a read-only checkout, a syntax error) it runs
// the TypeScript sources through tsx, so the CLI never runs code older than its sources.
// LOCKSTEP_FROM_SOURCE=1 always runs the sources through tsx.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// A shell whose directory was deleted (or moved away) under it: every path the CLI resolves
// needs the current directory, and Node would end with a stack of its own (uv_cwd).
// `-C <absolute dir>` (or `--cwd=`) ahead of the command names a directory that does not need
// the current one: the CLI starts there instead.
try {
  process.cwd();
} catch {
  if (!chdirToAbsoluteRootCwd(process.argv.slice(2))) {
    console.error(
      'lockstep: the current directory no longer exists (it was deleted or moved). cd into the repository again, then run the command.',
    );
    process.exit(1);
  }
}

/** Enters the absolute directory of the root `-C`/`--cwd` option, if any; true when it did. */
function chdirToAbsoluteRootCwd(argv) {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let dir;
    if (arg === '-C' || arg === '--cwd') dir = argv[i + 1];
    else if (arg.startsWith('--cwd=')) dir = arg.slice('--cwd='.length);
    else if (arg.startsWith('-C') && !arg.startsWith('--')) dir = arg.slice(2);
    else return false;
    if (!dir || !path.isAbsolute(dir)) return false;
    try {
      process.chdir(dir);
      return true;
    } catch {
      return false;
    }
  }
  return false;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist', 'cli');

/**
 * True when `entry` is a `[mtimeMs, size, ctimeMs]` triple as lib/cli/build.mjs records it (a
 * build recorded without the ctime is stale: it cannot tell an edit whose mtime was put back).
 */
function isStat(entry) {
  return Array.isArray(entry) && entry.length === 3 && entry.every((n) => typeof n === 'number');
}

/**
 * The current build's directory if none of its sources changed since, else undefined. A build
 * record that is not the shape lib/cli/build.mjs writes (truncated, hand-edited, empty) is stale.
 */
function freshBuild() {
  let dir;
  let files;
  let outputs;
  let present;
  try {
    dir = path.join(dist, fs.readFileSync(path.join(dist, 'current'), 'utf8').trim());
    ({ files, outputs } = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json'), 'utf8')));
    present = new Set(fs.readdirSync(dir));
  } catch {
    return undefined;
  }
  if (files === null || typeof files !== 'object' || !isStat(files['lib/cli/main.ts'])) return undefined;
  // A module of the build gone (a chunk deleted, a partial copy) would fail the command that
  // imports it, mid-run: rebuild instead.
  if (!Array.isArray(outputs) || !outputs.includes('main.mjs')) return undefined;
  for (const name of outputs) if (typeof name !== 'string' || !present.has(name)) return undefined;
  // The serving image holds the build and no sources; a checkout holds them all, so there a
  // source file that is gone (deleted, or renamed away) makes the build stale.
  const sources = fs.existsSync(path.join(root, 'lib/cli/main.ts'));
  // Every command starts with these few hundred stats: the paths are joined by hand (they are
  // the relative POSIX paths the build wrote; path.join would normalize each again) and a missing
  // file is told by the result, not by an exception.
  const prefix = root + path.sep;
  for (const rel in files) {
    if (!isStat(files[rel])) return undefined;
    let st;
    try {
      st = fs.statSync(prefix + rel, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st === undefined) {
      if (sources) return undefined;
      continue;
    }
    const [mtimeMs, size, ctimeMs] = files[rel];
    if (st.mtimeMs !== mtimeMs || st.size !== size || st.ctimeMs !== ctimeMs) return undefined;
  }
  return dir;
}

async function rebuild() {
  try {
    const { buildCli } = await import('../lib/cli/build.mjs');
    return await buildCli({ quiet: true });
  } catch (err) {
    if (process.env.LOCKSTEP_DEBUG === '1') console.error(`lockstep: rebuild failed: ${err?.stack ?? err}`);
    return undefined;
  }
}

/** The compiled CLI's `main` from build directory `dir`, or undefined when it does not load. */
async function importBuild(dir) {
  try {
    return (await import(pathToFileURL(path.join(dir, 'main.mjs')).href)).main;
  } catch (err) {
    // A damaged build (a truncated or deleted chunk): recompile, or run the sources.
    if (process.env.LOCKSTEP_DEBUG === '1')
      console.error(`lockstep: build ${dir} does not load: ${err?.stack ?? err}`);
    return undefined;
  }
}

/**
 * Marks `dir` as in use by this process so a concurrent rebuild keeps it (see claimBuild in
 * lib/cli/build.mjs, which this mirrors: the image has no lib/). False when `dir` is gone.
 */
function claim(dir) {
  try {
    const mark = path.join(dir, 'users', String(process.pid));
    fs.mkdirSync(path.dirname(mark), { recursive: true });
    fs.writeFileSync(mark, '');
    process.once('exit', () => fs.rmSync(mark, { force: true }));
  } catch (err) {
    // A read-only install (the serving image runs as a user without write access): nothing prunes there.
    if (err?.code !== 'EROFS' && err?.code !== 'EACCES' && err?.code !== 'EPERM') return false;
  }
  return fs.existsSync(path.join(dir, 'main.mjs'));
}

async function loadMain() {
  if (process.env.LOCKSTEP_FROM_SOURCE !== '1') {
    let fresh = freshBuild();
    if (fresh && !claim(fresh)) fresh = undefined;
    const main = (fresh && (await importBuild(fresh))) ?? (await rebuild().then((d) => d && importBuild(d)));
    if (main) return main;
  }
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    console.error(
      'lockstep: no usable compiled CLI in dist/cli and tsx is not installed to run the sources. Run `npm ci` with development dependencies, or `npm run build` where esbuild is installed.',
    );
    process.exit(1);
  }
  register();
  return (await import('../lib/cli/main.ts')).main;
}

// A command whose work stopped with nothing left to wake it (a promise that never settles)
// would end with Node's bare exit code 13: say so in one line instead of exiting silently.
let settled = false;
process.once('exit', (code) => {
  if (!settled && (code === 13 || process.exitCode === 13))
    process.stderr.write(
      'lockstep: internal error: the command stopped waiting on an operation that never finished (nothing was left to complete it). Run it again; if it repeats, run it with LOCKSTEP_DEBUG=1 and report the output.\n',
    );
});
const main = await loadMain();
process.exitCode = await main(process.argv.slice(2));
settled = true;
