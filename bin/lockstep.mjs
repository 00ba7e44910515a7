#!/usr/bin/env node
// Entry for `npx lockstep`. Runs the compiled CLI (dist/cli/, built by lib/cli/build.mjs during
// `npm ci` through the `prepare` script) when it is fresh: every source file compiled into it
// still has the mtime and size recorded at build time. After an edit it recompiles first (a
// second or less), and when it cannot (no esbuild, a read-only checkout, a syntax error) it runs
// the TypeScript sources through tsx, so the CLI never runs code older than its sources.
// LOCKSTEP_FROM_SOURCE=1 always runs the sources through tsx.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist', 'cli');

/** The current build's directory if none of its sources changed since, else undefined. */
function freshBuild() {
  let dir;
  let files;
  try {
    dir = path.join(dist, fs.readFileSync(path.join(dist, 'current'), 'utf8').trim());
    files = JSON.parse(fs.readFileSync(path.join(dir, 'inputs.json'), 'utf8')).files;
  } catch {
    return undefined;
  }
  for (const rel in files) {
    let st;
    try {
      st = fs.statSync(path.join(root, rel));
    } catch {
      continue; // not shipped: the serving image holds the build and no sources
    }
    if (st.mtimeMs !== files[rel][0] || st.size !== files[rel][1]) return undefined;
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

async function loadMain() {
  if (process.env.LOCKSTEP_FROM_SOURCE !== '1') {
    const dir = freshBuild() ?? (await rebuild());
    if (dir) return (await import(pathToFileURL(path.join(dir, 'main.mjs')).href)).main;
  }
  const { register } = await import('tsx/esm/api');
  register();
  return (await import('../lib/cli/main.ts')).main;
}

const main = await loadMain();
process.exitCode = await main(process.argv.slice(2));
