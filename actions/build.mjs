#!/usr/bin/env node
/**
 * Bundles each action's `src/index.ts` (and the repository code it imports) into
 * `actions/<name>/dist/index.js` with esbuild.
 *
 *   node actions/build.mjs [--outdir <dir>] [name...]
 *
 * With --outdir, bundle `<name>` goes to `<dir>/<name>/index.js` (tests build into a temp dir).
 * npm packages stay external: the workflows run `npm ci` before any `uses: ./actions/<name>`
 * step, so they resolve from the repository's node_modules at run time. That keeps the
 * native and wasm packages (tfjs-node, tfjs-backend-wasm, resvg, espeak-ng) loading from their
 * own directories, and a bundle is only our own code compiled (a few hundred KB, ~100 ms).
 * Files referenced as `new URL('./x.mjs', import.meta.url)` (worker scripts) keep pointing at
 * their source files (see sourceUrlPlugin), so a bundle is not relocatable: build it where it
 * runs. Bundled code loads the pipeline's stage modules (stages/pipeline.ts) at run time through
 * tsx (a development dependency, which the workflows' full `npm ci` installs).
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const actionsDir = path.join(root, 'actions');
const ASSET = /new URL\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g;

/** Names of the actions that have a TypeScript entry (composite actions have none). */
export async function listActions() {
  const names = [];
  for (const name of (await readdir(actionsDir)).sort()) {
    try {
      await stat(path.join(actionsDir, name, 'src', 'index.ts'));
      names.push(name);
    } catch {
      // not a JavaScript action
    }
  }
  return names;
}

/**
 * Rewrites `new URL('./x.mjs', import.meta.url)` (worker scripts, the default pipeline module)
 * to the absolute file URL of the source file. In a bundle, import.meta.url is the bundle or
 * chunk file, not the source, and workers load their siblings (through tsx) from the source
 * tree. Bundles are built in place in the job (and in a temp dir inside the repository in the
 * tests), never moved, so an absolute path is exact.
 */
function sourceUrlPlugin() {
  return {
    name: 'source-file-urls',
    setup(build) {
      build.onLoad({ filter: /\.(ts|mts)$/ }, async (args) => {
        if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
        const source = await readFile(args.path, 'utf8');
        if (!source.match(ASSET)) return undefined;
        const contents = source.replace(ASSET, (_m, rel) => {
          const target = path.resolve(path.dirname(args.path), rel);
          return `new URL(${JSON.stringify(pathToFileURL(target).href)})`;
        });
        return { contents, loader: 'ts' };
      });
    },
  };
}

/** Bundles one action; returns the bundle path. */
export async function buildAction(name, options = {}) {
  const outdir = options.outdir ? path.join(options.outdir, name) : path.join(actionsDir, name, 'dist');
  await esbuild.build({
    entryPoints: [path.join(actionsDir, name, 'src', 'index.ts')],
    outdir,
    entryNames: 'index',
    // Code splitting keeps the CLI's lazy `import()`s lazy: a command's heavy packages (tfjs,
    // Vertex AI, fastify) load only when that command runs, not when the action starts.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    packages: 'external',
    sourcemap: 'linked',
    logLevel: 'warning',
    plugins: [sourceUrlPlugin()],
  });
  // The bundle is ESM; say so even when the outdir is outside this package (a temp dir).
  await writeFile(path.join(outdir, 'package.json'), '{ "type": "module" }\n');
  return path.join(outdir, 'index.js');
}

/** Bundles the named actions (default: all) and returns their bundle paths. */
export async function buildActions(names, options = {}) {
  const all = names?.length ? names : await listActions();
  return Promise.all(all.map((n) => buildAction(n, options)));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--outdir');
  const outdir = i >= 0 ? path.resolve(args[i + 1]) : undefined;
  const names = args.filter((_, j) => i < 0 || (j !== i && j !== i + 1));
  const started = performance.now();
  const built = await buildActions(names, { outdir });
  console.log(`built ${built.length} action bundles in ${Math.round(performance.now() - started)} ms`);
}
