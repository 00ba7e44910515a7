#!/usr/bin/env node
/**
 * Benchmark harness: `npm run bench -- <name> [<name>...]`.
 * Registers tsx, imports `bench/<name>.ts`, awaits its default export (an async function
 * returning `Record<string, number | string>`), prints the figures and merges them into
 * `bench/results.json` under `<name>` with a `measured_at` timestamp. The merge is a
 * read-modify-write under a lock file and lands via temp file + rename, so concurrent runs by
 * other engineers never lose each other's keys.
 */
import { register } from 'tsx/esm/api';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

register();

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsPath = path.join(here, 'results.json');
const lockPath = resultsPath + '.lock';

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Takes an exclusive lock file (O_EXCL); a lock older than 60 s is considered stale. */
async function withLock(fn) {
  for (let i = 0; ; i++) {
    try {
      const fd = fs.openSync(lockPath, 'wx');
      fs.closeSync(fd);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      try {
        if (Date.now() - fs.statSync(lockPath).mtimeMs > 60_000) fs.rmSync(lockPath, { force: true });
      } catch {
        /* lock vanished meanwhile */
      }
      if (i > 600)
        throw new Error(`${lockPath}: lock held too long. Delete it if no bench is running.`, {
          cause: err,
        });
      await sleep(100);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lockPath, { force: true });
  }
}

/** Merges `figures` under `name` in bench/results.json, keeping every other key. */
async function mergeResults(name, figures) {
  await withLock(() => {
    let results = {};
    try {
      results = JSON.parse(fs.readFileSync(resultsPath, 'utf8'));
    } catch (err) {
      if (err.code !== 'ENOENT')
        throw new Error(`${resultsPath}: unreadable (${err.message}). Fix or delete it.`, {
          cause: err,
        });
    }
    results[name] = { ...figures, measured_at: new Date().toISOString() };
    const sorted = Object.fromEntries(
      Object.keys(results)
        .sort()
        .map((k) => [k, results[k]]),
    );
    const tmp = `${resultsPath}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    fs.writeSync(fd, JSON.stringify(sorted, null, 2) + '\n');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, resultsPath);
  });
}

async function main() {
  const names = process.argv.slice(2).filter((a) => a !== '--');
  if (names.length === 0) {
    const available = fs
      .readdirSync(here)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.slice(0, -3));
    console.error(`usage: npm run bench -- <name>  (available: ${available.join(', ') || 'none'})`);
    return 2;
  }
  for (const name of names) {
    if (!/^[\w-]+$/.test(name)) {
      console.error(`bench: invalid name "${name}". Use the file name of bench/<name>.ts without extension.`);
      return 2;
    }
    const file = path.join(here, `${name}.ts`);
    if (!fs.existsSync(file)) {
      console.error(`bench/${name}.ts: not found "${name}". Write it or pick an existing bench.`);
      return 2;
    }
    const mod = await import(pathToFileURL(file).href);
    if (typeof mod.default !== 'function') {
      console.error(`bench/${name}.ts: no default export function. Export default async () => ({...}).`);
      return 1;
    }
    console.error(`bench ${name}: running`);
    const started = performance.now();
    const figures = await mod.default();
    const seconds = (performance.now() - started) / 1000;
    for (const [key, value] of Object.entries(figures)) console.log(`${name}.${key} = ${value}`);
    console.error(`bench ${name}: done in ${seconds.toFixed(1)} s`);
    await mergeResults(name, figures);
  }
  return 0;
}

process.exitCode = await main();
