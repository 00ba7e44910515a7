/**
 * Evaluate lock entries for tests of the slices readers: a lockfile as the runner records
 * evaluate now (headline metrics in the lockfile, the per-slice metrics only in the out's
 * metrics.json), or as it did before the slices left the lockfile (all of them flattened in).
 */
import { emptyLockfile, serializeLockfile } from '../../lib/lockfile.ts';
import { PATHS } from '../../lib/paths.ts';
import { flattenMetrics, lockedMetrics } from '../../lib/pipeline/metrics.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import type { ArtifactRef, LockEntry } from '../../lib/types.ts';
import type { TmpRepo } from './tmp-repo.ts';

/** An evaluate lock entry pinning `outs` with `metrics`; its code, deps and params are filler. */
export function evaluateEntry(outs: ArtifactRef[], metrics: Record<string, number> | undefined): LockEntry {
  return { code: 'a'.repeat(64), deps: [], params: {}, outs, metrics };
}

/** A lockfile holding only `entry` as its evaluate stage. */
export function evaluateLockfile(entry: LockEntry): string {
  const lf = emptyLockfile();
  lf.stages.evaluate = entry;
  return serializeLockfile(lf);
}

/** A lockfile from before the slices left it: every key of `file` flattened into its metrics. */
export function flattenedEvaluateLockfile(file: unknown, outs: ArtifactRef[] = []): string {
  return evaluateLockfile(evaluateEntry(outs, flattenMetrics(file)));
}

/**
 * As the runner records evaluate: writes `file` to out/eval/metrics.json, commits the out to the
 * cache and writes artifacts.lock.yaml pinning it, its slices left to the out. Returns the out.
 */
export async function recordEvaluate(t: TmpRepo, file: unknown): Promise<ArtifactRef> {
  t.write(`${PATHS.eval}/metrics.json`, JSON.stringify(file));
  const out = await commitArtifact(t.repo, PATHS.eval);
  t.write(
    'artifacts.lock.yaml',
    evaluateLockfile(evaluateEntry([out], lockedMetrics(flattenMetrics(file), ['slices']))),
  );
  return out;
}
