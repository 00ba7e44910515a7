/**
 * Loading the pipeline: a module exporting `pipeline(params): StageDef[]`, the one named with
 * `--pipeline`, else the default the caller hands in. The core does not know where a repository
 * keeps its stage set; the CLI's default is lib/cli/pipeline-module.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { StageDef } from '../types.ts';
import { ConfigError } from '../errors.ts';

declare global {
  /** `true` in the compiled CLI (defined by lib/cli/build.mjs); absent when running from source. */
  var LOCKSTEP_COMPILED: true | undefined;
}

export type PipelineFactory = (params: any) => StageDef[];

/** Which pipeline module to load. */
export interface PipelineModule {
  /** The module the user named (`--pipeline`); a relative path resolves against `cwd`. */
  named?: string;
  cwd: string;
  /** The module loaded when none is named (an absolute path). */
  fallback: string;
}

let tsLoader: Promise<void> | undefined;

/**
 * Lets `import()` load a TypeScript module. From the sources a loader is active already (this
 * file is TypeScript); the compiled CLI registers tsx, a development dependency, on first need.
 */
function ensureTypeScriptLoader(file: string): Promise<void> {
  if (!globalThis.LOCKSTEP_COMPILED || !/\.[cm]?ts$/.test(file)) return Promise.resolve();
  tsLoader ??= import('tsx/esm/api').then(
    ({ register }) => void register(),
    (err: unknown) => {
      tsLoader = undefined;
      throw new ConfigError(
        `${file}: a TypeScript pipeline module needs tsx, which is not installed (${(err as Error).message.split('\n')[0]}). Run npm install, or pass a compiled .mjs module.`,
      );
    },
  );
  return tsLoader;
}

// What Node 20.19+ throws when tsx hands a TypeScript module outside any package.json (or one
// whose imports Node takes for CommonJS) back to require(), which then finds it mid-import.
const REQUIRE_ESM_CODES = new Set([
  'ERR_REQUIRE_CYCLE_MODULE',
  'ERR_REQUIRE_ESM',
  'ERR_REQUIRE_ASYNC_MODULE',
]);

/**
 * Imports `file`. A TypeScript module that the global loader cannot import as ESM (a pipeline in a
 * directory without a package.json, or one without "type": "module" that repro loads after its own
 * CommonJS dependencies) is imported again through tsx's tsImport, which loads it as ESM.
 */
async function importModule(file: string): Promise<unknown> {
  const url = pathToFileURL(file).href;
  try {
    return await import(url);
  } catch (err) {
    if (!/\.[cm]?ts$/.test(file) || !REQUIRE_ESM_CODES.has((err as NodeJS.ErrnoException).code ?? ''))
      throw err;
    const { tsImport } = await import('tsx/esm/api');
    return tsImport(url, import.meta.url);
  }
}

/** Imports the pipeline module (`named`, else `fallback`) and returns its factory. */
export async function loadPipeline({ named, cwd, fallback }: PipelineModule): Promise<PipelineFactory> {
  const file = named ? path.resolve(cwd, named) : fallback;
  if (!fs.existsSync(file)) {
    throw new ConfigError(
      `${named ?? file}: pipeline module not found. Pass a module exporting pipeline(params).`,
    );
  }
  await ensureTypeScriptLoader(file);
  const mod = (await importModule(file)) as { pipeline?: unknown; default?: unknown };
  const factory = (mod.pipeline ?? mod.default) as PipelineFactory | undefined;
  if (typeof factory !== 'function') {
    throw new ConfigError(
      `${named ?? file}: does not export pipeline(params). Export a function returning StageDef[].`,
    );
  }
  return factory;
}
