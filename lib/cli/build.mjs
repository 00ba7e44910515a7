#!/usr/bin/env node
/**
 * Compiles the CLI with esbuild into `dist/cli/<build>/`, so `lockstep` starts without a
 * TypeScript loader: `npm ci` runs it (the `prepare` script), `npm run build` runs it by hand, and
 * bin/lockstep.mjs runs it again when a source file changed since the last build.
 *
 *   node lib/cli/build.mjs [--out <dist dir>] [--if-available]
 *
 * `--if-available` (the `prepare` script) exits 0 with a note when esbuild is not installed
 * (`npm ci --omit=dev`): the launcher then runs the sources.
 *
 * What it writes, in `<dist>` (default `<package>/dist/cli`):
 * - `<build>/main.mjs` (the CLI, exporting `main(argv)`), `<build>/pipeline.mjs` (stages/pipeline.ts)
 *   and one file per worker thread script, plus the chunks esbuild splits out. Splitting keeps
 *   every lazy `import()` lazy: a command's heavy packages load only when that command runs.
 * - `<build>/inputs.json`: every source file compiled in and this script, with their mtime, size
 *   and ctime, which the launcher stats to tell a fresh build from a stale one, and `outputs`,
 *   the build's modules, which it checks are all still there.
 * - `current`: the name of the newest build, replaced atomically (temp file + rename) once the
 *   build is complete. A process that is running keeps lazily loading chunks from its own build
 *   directory, so the last few builds are kept rather than overwritten, and an older one is
 *   removed only when no live process has claimed it (`<build>/users/<pid>`, see claimBuild).
 *
 * npm packages stay external (they load from node_modules, so tfjs finds its .wasm files and
 * native packages their binaries). Every `new URL('<relative>', import.meta.url)` in our sources
 * is rewritten: a reference to a compiled entry (a worker script, the default pipeline) points at
 * its compiled sibling, any other at the same file in the source tree. `globalThis.LOCKSTEP_COMPILED`
 * is `true` in the output, so code that registers tsx from source does not do it here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Compiled entries: output name → source (repository-relative). */
export const ENTRIES = {
  main: 'lib/cli/main.ts',
  pipeline: 'stages/pipeline.ts',
  'features-worker': 'lib/ml/features-worker.mjs',
  'hash-worker': 'lib/store/hash-worker.mjs',
  'espeak-worker': 'stages/data/espeak-worker.mjs',
  'trial-worker': 'lib/tune/trial-worker.mjs',
  'shadow-worker': 'lib/serving/shadow-worker.mjs',
};

/**
 * Pure-JavaScript packages compiled into the output instead of loaded from node_modules: every
 * command starts by loading them, and one file costs less than resolving and reading their
 * dozens of modules (zod alone has ~80). They read no files of their own at run time.
 */
const INLINE = new Set(['commander', 'yaml', 'zod']);

/** Keeps npm packages external (resolved from node_modules at run time) except INLINE ones. */
function externalsPlugin() {
  return {
    name: 'externals',
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, (args) => {
        if (path.isAbsolute(args.path)) return undefined;
        const parts = args.path.split('/');
        const name = args.path.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
        return INLINE.has(name) ? undefined : { path: args.path, external: true };
      });
    },
  };
}

/**
 * commander requires `node:child_process` when it loads, for executable subcommands, which this
 * CLI never declares; loading it (and net, dgram and the streams it pulls in) costs every command
 * several milliseconds. The inlined copy requires it when a subcommand would be spawned instead.
 * A commander whose source no longer has that line is inlined as it is.
 */
function lazyChildProcessPlugin() {
  const eager = "const childProcess = require('node:child_process');";
  const lazy = "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };";
  return {
    name: 'lazy-child-process',
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
        const source = await fs.promises.readFile(args.path, 'utf8');
        if (!source.includes(eager)) return undefined;
        return { contents: source.replace(eager, lazy), loader: 'js' };
      });
    },
  };
}

/**
 * zod's `locales` namespace re-exports every language's error messages (some 400 KB, half the
 * compiled zod), which `import { z } from 'zod'` keeps although no source uses `z.locales`: zod
 * sets English itself (classic/schemas.js imports locales/en.js directly). The inlined copy's
 * namespace holds English alone, so a command parses that much less code when it loads zod.
 * A source that names another locale fails the build (see buildCli) instead of getting undefined.
 */
function zodEnglishOnlyPlugin() {
  return {
    name: 'zod-english-only',
    setup(build) {
      build.onLoad({ filter: /[\\/]node_modules[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
        contents: 'export { default as en } from "./en.js";\n',
        loader: 'js',
      }));
    },
  };
}

/** Builds kept besides the newest (running processes may still load chunks from them). */
const KEEP = 3;
const ASSET = /new URL\(\s*(['"])(\.{1,2}\/[^'"]*)\1\s*,\s*import\.meta\.url\s*\)/g;

function posix(p) {
  return p.split(path.sep).join('/');
}

/** Rewrites `new URL('<relative>', import.meta.url)` for code that now lives in `outdir`. */
function assetUrlPlugin(root, outdir) {
  const entryByPath = new Map(Object.entries(ENTRIES).map(([name, src]) => [path.join(root, src), name]));
  return {
    name: 'asset-urls',
    setup(build) {
      build.onLoad({ filter: /\.(ts|mts|mjs)$/ }, async (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const source = await fs.promises.readFile(args.path, 'utf8');
        if (!source.match(ASSET)) return undefined;
        const contents = source.replace(ASSET, (_m, _q, rel) => {
          const target = path.resolve(path.dirname(args.path), rel);
          const entry = entryByPath.get(target);
          let ref = entry ? `./${entry}.mjs` : posix(path.relative(outdir, target));
          if (!entry && rel.endsWith('/')) ref += '/';
          if (!ref.startsWith('.')) ref = `./${ref}`;
          return `new URL(${JSON.stringify(ref)}, import.meta.url)`;
        });
        return { contents, loader: args.path.endsWith('.mjs') ? 'js' : 'ts' };
      });
    },
  };
}

/** Names of the finished builds in `dist`, oldest first. */
function listBuilds(dist) {
  let names;
  try {
    names = fs.readdirSync(dist, { withFileTypes: true });
  } catch {
    return [];
  }
  return names
    .filter((e) => e.isDirectory() && e.name.startsWith('b-'))
    .map((e) => e.name)
    .sort();
}

/**
 * Compiles the CLI and makes it the current build. Returns the build directory.
 * @param {{root?: string, dist?: string, quiet?: boolean}} [options] `root`: the package (default:
 *   this one); `dist`: where builds go (default `<root>/dist/cli`); `quiet`: print no compile
 *   errors (the launcher falls back to tsx, which reports them itself).
 */
export async function buildCli(options = {}) {
  const root = options.root ?? ROOT;
  const dist = options.dist ?? path.join(root, 'dist', 'cli');
  const esbuild = await import('esbuild');
  const started = Date.now();
  // Time-ordered and unique per process, so concurrent builds never share a directory.
  const name = `b-${started.toString(36).padStart(9, '0')}-${process.pid}`;
  const outdir = path.join(dist, name);
  const result = await esbuild
    .build({
      absWorkingDir: root,
      entryPoints: Object.fromEntries(Object.entries(ENTRIES).map(([n, src]) => [n, path.join(root, src)])),
      outdir,
      outExtension: { '.js': '.mjs' },
      chunkNames: '[name]-[hash]',
      splitting: true,
      bundle: true,
      platform: 'node',
      target: 'node20',
      format: 'esm',
      // Inlined CommonJS packages call require(): give the ESM output one.
      banner: {
        js: "import { createRequire as __lockstepRequire } from 'node:module';\nconst require = __lockstepRequire(import.meta.url);",
      },
      define: { 'globalThis.LOCKSTEP_COMPILED': 'true' },
      sourcemap: 'linked',
      metafile: true,
      logLevel: options.quiet ? 'silent' : 'warning',
      plugins: [
        externalsPlugin(),
        lazyChildProcessPlugin(),
        zodEnglishOnlyPlugin(),
        assetUrlPlugin(root, outdir),
      ],
    })
    .catch((err) => {
      fs.rmSync(outdir, { recursive: true, force: true });
      throw err;
    });
  // A relative import esbuild could not follow (a specifier in a variable) would fail at run
  // time. (Comments, and a template-literal import with the keys of the map esbuild makes for it,
  // are fine.)
  const unresolved = /(["'])\.{1,2}\/[^"'\s]*\.[cm]?ts\1(?!\s*:)/;
  for (const out of Object.keys(result.metafile.outputs)) {
    if (!out.endsWith('.mjs')) continue;
    const text = fs.readFileSync(path.resolve(root, out), 'utf8');
    const line = text.split('\n').find((l) => !l.trimStart().startsWith('//') && unresolved.test(l));
    if (line) {
      fs.rmSync(outdir, { recursive: true, force: true });
      throw new Error(
        `${posix(path.relative(root, out))}: a reference to a source file survived compilation ${line.match(unresolved)[0]}. Import it with a literal specifier so esbuild bundles it.`,
      );
    }
  }
  // The inlined zod holds the English locale alone (zodEnglishOnlyPlugin).
  for (const out of Object.keys(result.metafile.outputs)) {
    if (!out.endsWith('.mjs')) continue;
    const other = [...fs.readFileSync(path.resolve(root, out), 'utf8').matchAll(/\.locales\.(\w+)/g)].find(
      (m) => m[1] !== 'en',
    );
    if (other) {
      fs.rmSync(outdir, { recursive: true, force: true });
      throw new Error(
        `${posix(path.relative(root, out))}: uses zod's locale "${other[1]}", which the compiled CLI leaves out. Drop zodEnglishOnlyPlugin in lib/cli/build.mjs to compile every locale in.`,
      );
    }
  }
  const files = {};
  // This script too: an edit to how the CLI is compiled makes the build stale like a source edit.
  const self = path.join(root, 'lib', 'cli', 'build.mjs');
  for (const input of [...Object.keys(result.metafile.inputs), ...(fs.existsSync(self) ? [self] : [])]) {
    const abs = path.resolve(root, input);
    if (abs.includes(`${path.sep}node_modules${path.sep}`)) continue;
    const st = fs.statSync(abs);
    // Edited while the build was reading it: the output may hold the older text, so record
    // an impossible stat and let the next start rebuild. The ctime is recorded because a write
    // that keeps the size and puts the mtime back (`touch -r`, `cp -p`) still moves it.
    files[posix(path.relative(root, abs))] =
      st.mtimeMs >= started || st.ctimeMs >= started ? [-1, -1, -1] : [st.mtimeMs, st.size, st.ctimeMs];
  }
  // The modules the build holds: a chunk deleted since (a partial copy, a hand clean-up) would
  // fail the command that imports it, so the launcher rebuilds instead (one readdir).
  const outputs = fs.readdirSync(outdir).filter((n) => n.endsWith('.mjs'));
  fs.writeFileSync(path.join(outdir, 'inputs.json'), JSON.stringify({ files, outputs }) + '\n');
  claimBuild(outdir);
  const tmp = path.join(dist, `current.${process.pid}.tmp`);
  fs.writeFileSync(tmp, name + '\n');
  fs.renameSync(tmp, path.join(dist, 'current'));
  const builds = listBuilds(dist).filter((b) => b !== name);
  for (const old of builds.slice(0, Math.max(0, builds.length - KEEP)))
    if (!inUse(path.join(dist, old))) fs.rmSync(path.join(dist, old), { recursive: true, force: true });
  return outdir;
}

/**
 * Marks build directory `dir` as used by this process (`<dir>/users/<pid>`), so a concurrent
 * build does not prune it while this process still loads chunks from it. Returns false when the
 * mark cannot be written (a read-only install, or the build is gone).
 */
export function claimBuild(dir) {
  try {
    const mark = path.join(dir, 'users', String(process.pid));
    fs.mkdirSync(path.dirname(mark), { recursive: true });
    fs.writeFileSync(mark, '');
    // Gone with the process (a killed one leaves its mark, which inUse sees as dead).
    process.once('exit', () => fs.rmSync(mark, { force: true }));
    return true;
  } catch {
    return false;
  }
}

/** True when a live process has claimed build directory `dir` (claimBuild). */
function inUse(dir) {
  let pids;
  try {
    pids = fs.readdirSync(path.join(dir, 'users'));
  } catch {
    return false;
  }
  return pids.some((pid) => {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) return false;
    try {
      process.kill(Number(pid), 0);
      return true;
    } catch (err) {
      return err.code === 'EPERM'; // alive, owned by another user
    }
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--out');
  const dist = i >= 0 ? path.resolve(args[i + 1]) : undefined;
  if (args.includes('--if-available')) {
    try {
      await import('esbuild');
    } catch {
      console.log('lockstep: esbuild is not installed (no dev dependencies); the CLI runs from source.');
      process.exit(0);
    }
  }
  const started = performance.now();
  const outdir = await buildCli({ dist });
  console.log(
    `built the CLI into ${path.relative(process.cwd(), outdir) || outdir} in ${Math.round(performance.now() - started)} ms`,
  );
}
