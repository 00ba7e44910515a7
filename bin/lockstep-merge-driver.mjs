#!/usr/bin/env node
// The git merge driver for artifacts.lock.yaml (`merge.lockstep.driver`): git runs it with
// %O %A %B %P, once per merge. Loading the TypeScript sources through tsx costs several times
// the merge itself, so the driver runs from a bundle of lib/lockfile-driver.ts (yaml and zod
// inlined) in node_modules/.cache/lockstep, rebuilt with esbuild whenever a source it was built
// from changed. Without esbuild or a writable cache it falls back to tsx: slower, same result.
// `--prepare` only (re)builds the bundle (install-driver and postinstall run it).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = path.join(ROOT, 'lib', 'lockfile-driver.ts');
const CACHE = path.join(ROOT, 'node_modules', '.cache', 'lockstep');
const BUNDLE = path.join(CACHE, 'merge-driver.mjs');
const INPUTS = path.join(CACHE, 'merge-driver.inputs.json');

/**
 * [path, size, mtimeMs, ctimeMs] of a file, or undefined when it is gone. The ctime catches an
 * edit that kept the size and put the mtime back (`touch -r`, `cp -p`, editors that keep times).
 */
function stamp(file) {
  try {
    const st = fs.statSync(file);
    return [file, st.size, st.mtimeMs, st.ctimeMs];
  } catch {
    return undefined;
  }
}

/** True when the bundle exists and every source it was built from is unchanged. */
function isBundleFresh() {
  try {
    const inputs = JSON.parse(fs.readFileSync(INPUTS, 'utf8'));
    return (
      fs.existsSync(BUNDLE) &&
      inputs.length > 0 &&
      inputs.every(([file, size, mtime, ctime]) => {
        // A record written before ctimes were kept (three fields) counts as stale: one rebuild.
        const now = stamp(file);
        return now !== undefined && now[1] === size && now[2] === mtime && now[3] === ctime;
      })
    );
  } catch {
    return false;
  }
}

async function buildBundle() {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    stdin: {
      contents: `export { runMergeDriver } from ${JSON.stringify(SOURCE)};`,
      resolveDir: ROOT,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: true,
    // yaml ships CommonJS that requires node builtins: give the ESM bundle a require.
    banner: {
      js: "import { createRequire as __lockstepRequire } from 'node:module'; const require = __lockstepRequire(import.meta.url);",
    },
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  // Our sources by stamp; dependencies through npm's record of the install, which every
  // install rewrites (and postinstall then rebuilds the bundle anyway).
  const files = Object.keys(result.metafile.inputs)
    .filter((f) => !f.startsWith('<stdin>') && !f.split(/[\\/]/).includes('node_modules'))
    .map((f) => path.resolve(ROOT, f));
  const inputs = [...files, path.join(ROOT, 'node_modules', '.package-lock.json')]
    .map(stamp)
    .filter((s) => s !== undefined);
  fs.mkdirSync(CACHE, { recursive: true });
  // Temp file + rename each: two merges building at once never read a half-written bundle.
  const suffix = `.${process.pid}.tmp`;
  fs.writeFileSync(BUNDLE + suffix, result.outputFiles[0].contents);
  fs.renameSync(BUNDLE + suffix, BUNDLE);
  fs.writeFileSync(INPUTS + suffix, JSON.stringify(inputs));
  fs.renameSync(INPUTS + suffix, INPUTS);
}

/** runMergeDriver from the bundle (built if stale), or from the sources through tsx. */
async function loadDriver() {
  try {
    if (!isBundleFresh()) await buildBundle();
    return (await import(pathToFileURL(BUNDLE).href)).runMergeDriver;
  } catch (err) {
    process.stderr.write(
      `lockstep-merge-driver: no bundle (${String(err).split('\n')[0]}); loading the sources instead (slower). "npx lockstep lock install-driver" rebuilds it.\n`,
    );
    const { register } = await import('tsx/esm/api');
    register();
    return (await import(pathToFileURL(SOURCE).href)).runMergeDriver;
  }
}

if (process.argv[2] === '--prepare') {
  try {
    if (!isBundleFresh()) await buildBundle();
  } catch (err) {
    console.error(
      `lockstep-merge-driver: no bundle (${String(err).split('\n')[0]}); merges load the sources instead.`,
    );
  }
} else {
  const runMergeDriver = await loadDriver();
  process.exitCode = await runMergeDriver(process.argv.slice(2));
}
