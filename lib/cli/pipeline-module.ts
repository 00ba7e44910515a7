/**
 * Which pipeline module the CLI loads when none is named with `--pipeline`: the repository's
 * `stages/pipeline.ts`, else lockstep's own. The stage set's place is the CLI's knowledge; the core
 * (lib/pipeline/load.ts) loads whatever module it is handed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Repo } from '../repo.ts';

/** Where a repository keeps its pipeline module and stage code, repository-relative. */
export const STAGES_DIR = 'stages';
const PIPELINE_FILE = `${STAGES_DIR}/pipeline.ts`;

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
  const local = path.join(repo.root, PIPELINE_FILE);
  // lockstep's own repository runs its own (possibly compiled) pipeline; any other its file.
  const own = path.join(fileURLToPath(OWN_ROOT), PIPELINE_FILE);
  if (fs.existsSync(local) && !isSameFile(local, own)) return local;
  return fileURLToPath(OWN_PIPELINE);
}
