/**
 * `lockstep status`: the plan without running (stale stages and why), plus which locked artifacts
 * have objects missing from the local cache and, optionally, from the remote.
 */
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Oid, StageDef } from '../types.ts';
import { changedDataOf, type MissingArtifact, type StatusReport } from './status-report.ts';
import type { CachedAnswer } from './status-cache.ts';
import type { Remote } from '../store/remote.ts';
import { Cache } from '../store/cache.ts';
import { artifactObjects, lockfileArtifacts } from '../store/artifacts.ts';
import { StatusIndex } from '../store/status-index.ts';
import { readLockfile } from '../lockfile.ts';
import { LockfileConflictError } from '../errors.ts';
import { planRun, planToJson } from './plan.ts';

async function objectsOf(repo: Repo, cache: Cache, ref: ArtifactRef): Promise<Oid[]> {
  try {
    return await artifactObjects(repo, ref, { cache });
  } catch {
    return [ref.hash];
  }
}

/** Computes the status of the repository for `stages` (nothing is changed). */
export async function repoStatus(
  repo: Repo,
  stages: StageDef[],
  options: {
    params: Record<string, any>;
    remote?: Remote;
    /** Receives what status-cache.ts keeps of the answer (not called with a remote or a conflict). */
    onAnswer?: (answer: CachedAnswer) => void;
  },
): Promise<StatusReport> {
  const cache = new Cache(repo);
  let lockfile;
  let conflict: StatusReport['conflict'];
  try {
    lockfile = readLockfile(repo);
  } catch (err) {
    if (!(err instanceof LockfileConflictError)) throw err;
    // Show what `lockstep lock resolve` would leave, so status still answers "what is stale".
    const { mergeConflictedLockfile } = await import('../lockfile-conflict.ts');
    const merge = (await mergeConflictedLockfile(repo))!;
    lockfile = merge.lockfile;
    conflict = {
      message: err.message,
      stale: merge.dropped,
      data: merge.dataConflicts.map((c) => c.path),
    };
  }
  const plan = await planRun(repo, stages, { params: options.params, lockfile, cache });
  const json = planToJson(plan);
  // The status index answers "unchanged" from stats alone, and "every object is cached" from
  // the cache's directory stamps, so a status with nothing changed reads no manifest.
  const index = StatusIndex.load(repo);
  const changedData = await changedDataOf(index, Object.entries(lockfile.data ?? {}));
  const refs = lockfileArtifacts(lockfile);
  const missingLocal: MissingArtifact[] = [];
  const perRef: { ref: ArtifactRef; oids: Oid[] }[] = [];
  for (const ref of refs) {
    if (!options.remote && index.isComplete(ref)) continue;
    const oids = await objectsOf(repo, cache, ref);
    perRef.push({ ref, oids });
    const absent = oids.filter((o) => !cache.hasSync(o));
    if (absent.length > 0) missingLocal.push({ path: ref.path, hash: ref.hash, objects: absent.length });
    else index.markComplete(ref);
  }
  await index.save();
  const report: StatusReport = {
    stages: json.stages,
    stale: json.stages.filter((s) => s.action !== 'skip').map((s) => s.name),
    changedData,
    missingLocal,
    ...(conflict ? { conflict } : {}),
  };
  if (!options.remote && !conflict)
    options.onAnswer?.({
      stages: report.stages,
      stale: report.stale,
      data: Object.entries(lockfile.data ?? {}).map(([p, ref]) => [p, ref.hash]),
      refs,
    });
  if (options.remote) {
    const all = [...new Set(perRef.flatMap((p) => p.oids))];
    // Loose or in a pack of its directory (packs.ts).
    const { remoteHolds } = await import('../store/packs.ts');
    const present = await remoteHolds(cache, options.remote, all, {
      manifests: perRef.filter((p) => p.ref.dir).map((p) => p.ref.hash),
    });
    report.remote = options.remote.url;
    report.missingRemote = perRef
      .map(({ ref, oids }) => ({
        path: ref.path,
        hash: ref.hash,
        objects: oids.filter((o) => !present.has(o)).length,
      }))
      .filter((m) => m.objects > 0);
  }
  return report;
}

export { formatStatus, type ChangedData, type MissingArtifact, type StatusReport } from './status-report.ts';
