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

export type PipelineFactory = (params: any) => StageDef[];

/** The module path used when none is given: `<root>/stages/pipeline.ts`, else lockstep's own. */
export function defaultPipelinePath(repo: Repo): string {
  const local = path.join(repo.root, 'stages', 'pipeline.ts');
  if (fs.existsSync(local)) return local;
  return fileURLToPath(new URL('../../stages/pipeline.ts', import.meta.url));
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
  const mod = (await import(pathToFileURL(file).href)) as { pipeline?: unknown; default?: unknown };
  const factory = (mod.pipeline ?? mod.default) as PipelineFactory | undefined;
  if (typeof factory !== 'function') {
    throw new ConfigError(
      `${modulePath ?? file}: does not export pipeline(params). Export a function returning StageDef[].`,
    );
  }
  return factory;
}
