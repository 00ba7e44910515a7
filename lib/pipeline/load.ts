/**
 * Finding the pipeline: a module exporting `pipeline(params): StageDef[]`. By default the
 * repository's `stages/pipeline.ts`; tests and users may pass another with `--pipeline`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import type { Repo } from '../repo.ts';
import type { StageDef } from '../types.ts';
import { ConfigError } from '../errors.ts';

declare global {
  /** `true` in the compiled CLI (defined by lib/cli/build.mjs); absent when running from source. */
  var LOCKSTEP_COMPILED: true | undefined;
}

export type PipelineFactory = (params: any) => StageDef[];

// lockstep's own pipeline module and package root. In the compiled CLI (lib/cli/build.mjs) the
// first points at the compiled copy of stages/pipeline.ts, the second still at the sources.
const OWN_PIPELINE = new URL('../../stages/pipeline.ts', import.meta.url);
const OWN_ROOT = new URL('../../', import.meta.url);

function isSameFile(a: string, b: string): boolean {
  try {
    return fs.realpathSync(a) === fs.realpathSync(b);
  } catch {
    return false;
  }
}

/** The module path used when none is given: `<root>/stages/pipeline.ts`, else lockstep's own. */
export function defaultPipelinePath(repo: Repo): string {
  const local = path.join(repo.root, 'stages', 'pipeline.ts');
  // lockstep's own repository runs its own (possibly compiled) pipeline; any other its file.
  const own = path.join(fileURLToPath(OWN_ROOT), 'stages', 'pipeline.ts');
  if (fs.existsSync(local) && !isSameFile(local, own)) return local;
  return fileURLToPath(OWN_PIPELINE);
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

/** Imports the pipeline module (relative paths resolve against `cwd`) and returns its factory. */
export async function loadPipeline(
  repo: Repo,
  modulePath?: string,
  cwd = repo.root,
): Promise<PipelineFactory> {
  const file = modulePath ? path.resolve(cwd, modulePath) : defaultPipelinePath(repo);
  if (!fs.existsSync(file)) {
    throw new ConfigError(
      `${modulePath ?? file}: pipeline module not found. Pass a module exporting pipeline(params).`,
    );
  }
  await ensureTypeScriptLoader(file);
  const mod = (await import(pathToFileURL(file).href)) as { pipeline?: unknown; default?: unknown };
  const factory = (mod.pipeline ?? mod.default) as PipelineFactory | undefined;
  if (typeof factory !== 'function') {
    throw new ConfigError(
      `${modulePath ?? file}: does not export pipeline(params). Export a function returning StageDef[].`,
    );
  }
  return factory;
}
