/**
 * Where pulled experiments came from, kept per clone in `.lockstep/exp-origins.json`
 * (name → git remote and the commit pulled). An experiment re-run here under the same name
 * points at another commit, so it counts as local again.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import { writeFileAtomic } from '../atomic.ts';
import type { Experiment } from './store.ts';

/** Where a pulled experiment came from: `<stateDir>/exp-origins.json`, name → origin. */
export interface ExperimentOrigin {
  remote: string;
  commit: string;
}

function originsPath(repo: Repo): string {
  return path.join(repo.stateDir, 'exp-origins.json');
}

/** Recorded origins; an experiment re-run here (another commit) is local again. */
export function readOrigins(repo: Repo): Record<string, ExperimentOrigin> {
  try {
    return JSON.parse(fs.readFileSync(originsPath(repo), 'utf8')) as Record<string, ExperimentOrigin>;
  } catch {
    return {};
  }
}

/** The git remote an experiment was pulled from, or `local`. */
export function originOf(
  origins: Record<string, ExperimentOrigin>,
  e: Pick<Experiment, 'name' | 'commit'>,
): string {
  const o = origins[e.name];
  return o && o.commit === e.commit ? o.remote : 'local';
}

/** Replaces the recorded origins. */
export async function writeOrigins(repo: Repo, origins: Record<string, ExperimentOrigin>): Promise<void> {
  fs.mkdirSync(repo.stateDir, { recursive: true });
  await writeFileAtomic(originsPath(repo), JSON.stringify(origins, null, 2) + '\n', { tmpDir: repo.tmpDir });
}
