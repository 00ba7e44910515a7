/**
 * The model of a revision: the out at `out/model` (PATHS.model) that some stage's lock entry
 * pins. The one reader below registry, promotion, canary and the endpoints; the registry passes
 * its layout's model path where a repository keeps the model elsewhere.
 */
import type { ArtifactRef, LockEntry, Lockfile } from '../types.ts';
import { PATHS } from '../paths.ts';

/** The stage whose outs hold the model at `modelPath`, and its lock entry, if any. */
export function modelProducerOf(
  lockfile: Lockfile,
  modelPath: string = PATHS.model,
): [string, LockEntry] | undefined {
  return Object.entries(lockfile.stages).find(([, e]) => e.outs.some((o) => o.path === modelPath));
}

/** The model artifact a lockfile pins (the out at `modelPath`), if any. */
export function modelOf(lockfile: Lockfile, modelPath: string = PATHS.model): ArtifactRef | undefined {
  return modelProducerOf(lockfile, modelPath)?.[1].outs.find((o) => o.path === modelPath);
}
