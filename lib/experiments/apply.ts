/**
 * `exp apply`: bring an experiment into the workspace, all or nothing. Every artifact its
 * lockfile pins is fetched into the cache first (from the remote when the cache lacks it); if
 * any cannot be, nothing is written and the error lists them. Then the outputs are checked out,
 * and only then params.yaml (only the values that differ, everything else byte for byte) and the
 * lockfile are written, so the workspace never pins outputs it does not hold. An output it would
 * replace whose bytes in the workspace exist nowhere else (edited or added by hand, never
 * recorded: not what the workspace lockfile pins, not in the cache) stops it before anything is
 * written, unless `force`. It holds the repository lock throughout, so gc cannot collect an
 * object between its fetch and its checkout.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { defaultRemote } from '../store/remote-config.ts';
import { readFileAtRev } from '../git.ts';
import { LOCKFILE_NAME, readLockfile } from '../lockfile.ts';
import { readCommittedLockfileAt } from '../environment/revision.ts';
import { experimentLockfileLabels } from './store.ts';
import type { Output } from '../output.ts';
import type { Repo } from '../repo.ts';
import { writeFileAtomic } from '../atomic.ts';
import { hashArtifact, isArtifactCurrent, lockfileArtifacts } from '../store/artifacts.ts';
import { checkoutArtifact } from '../store/checkout.ts';
import { Cache } from '../store/cache.ts';
import { LockstepError } from '../errors.ts';
import { withRepoLock } from '../lock.ts';
import { ensureArtifacts } from '../store/availability.ts';
import type { ArtifactRef } from '../types.ts';
import { changedParamValues, deleteParamsKeys, setParamsValues } from './params-edit.ts';
import { getExperiment } from './store.ts';

export interface ApplyResult {
  name: string;
  commit: string;
  /** Files written (params.yaml, the lockfile); a file already equal is not listed. */
  written: string[];
  /** Artifact paths checked out (those not already current). */
  restored: string[];
  /** params.yaml keys changed. */
  params: string[];
  /** Objects downloaded from the remote. */
  downloaded: number;
  /** False when the experiment's commit has no lockfile (its run did not finish): only params apply. */
  lockfile: boolean;
}

/** One ref per path (the lockfile may list a path twice only if it is malformed; last wins). */
function uniqueByPath(refs: ArtifactRef[]): ArtifactRef[] {
  return [...new Map(refs.map((r) => [r.path, r])).values()];
}

/** The workspace params.yaml text with exactly the values of `target` that differ set. */
function paramsFor(current: string | undefined, target: string): { text: string; keys: string[] } {
  if (current === undefined) return { text: target, keys: ['*'] };
  const changes = changedParamValues(
    (parseYaml(current) as Record<string, unknown> | null) ?? {},
    (parseYaml(target) as Record<string, unknown> | null) ?? {},
  );
  const removed = Object.keys(changes).filter((k) => changes[k] === undefined);
  const set = Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined));
  return {
    text: deleteParamsKeys(setParamsValues(current, set), removed),
    keys: Object.keys(changes).sort(),
  };
}

/**
 * Of the paths `refs` would replace, those whose workspace bytes cannot be got back: present, and
 * neither what the workspace lockfile pins there nor an object in the cache.
 */
async function unrecordedPaths(repo: Repo, refs: ArtifactRef[]): Promise<string[]> {
  if (refs.length === 0) return [];
  let pinned = new Map<string, string>();
  try {
    pinned = new Map(lockfileArtifacts(readLockfile(repo)).map((r) => [r.path, r.hash]));
  } catch {
    // No readable workspace lockfile: only the cache tells what is recorded.
  }
  const cache = new Cache(repo);
  const lost: string[] = [];
  for (const ref of refs) {
    let now: ArtifactRef;
    try {
      now = await hashArtifact(repo, ref.path);
    } catch {
      continue; // Nothing there (or unreadable as an artifact): nothing to lose.
    }
    if (now.nfiles === 0) continue;
    if (pinned.get(ref.path) === now.hash || cache.hasSync(now.hash)) continue;
    lost.push(ref.path);
  }
  return lost;
}

export interface ApplyOptions {
  /** Progress and lock-wait messages. */
  out?: Output;
  /** Overwrite workspace outputs whose changes are recorded nowhere (default false). */
  force?: boolean;
}

/** Applies experiment `name` to the workspace (see the module comment). */
export function applyExperiment(repo: Repo, name: string, options: ApplyOptions = {}): Promise<ApplyResult> {
  return withRepoLock(repo, 'exp apply', () => applyUnlocked(repo, name, options), { out: options.out });
}

async function applyUnlocked(repo: Repo, name: string, options: ApplyOptions): Promise<ApplyResult> {
  const e = await getExperiment(repo.root, name);
  const committed = await readCommittedLockfileAt(repo.root, e.commit, experimentLockfileLabels(name));
  const lockText = committed?.text;
  const lock = committed?.lockfile;
  const paramsText = await readFileAtRev(repo.root, e.commit, 'params.yaml');
  const refs = lock ? uniqueByPath(lockfileArtifacts(lock)) : [];
  const remote = await defaultRemote(repo);
  const { downloaded } = await ensureArtifacts(repo, refs, {
    remote,
    out: options.out,
    what: `exp apply ${name}`,
    fix: remote
      ? `Push them from a clone that has them (lockstep exp push), or re-run the experiment; nothing was changed.`
      : `Configure the remote that holds them (or re-run the experiment); nothing was changed.`,
  });
  const toRestore: ArtifactRef[] = [];
  for (const ref of refs) if (!(await isArtifactCurrent(repo, ref))) toRestore.push(ref);
  if (!options.force) {
    const unrecorded = await unrecordedPaths(repo, toRestore);
    if (unrecorded.length > 0) {
      throw new LockstepError(
        `exp apply ${name}: the workspace holds changes to ${unrecorded.join(', ')} that exist nowhere else and would be overwritten. Record them (lockstep add, or lockstep repro and commit), move them aside, or pass --force; nothing was changed.`,
      );
    }
  }
  const restored: string[] = [];
  for (const ref of toRestore) {
    await checkoutArtifact(repo, ref, { out: options.out });
    restored.push(ref.path);
  }
  const written: string[] = [];
  let keys: string[] = [];
  if (paramsText !== undefined) {
    const current = await readFile(repo.paramsPath, 'utf8').catch(() => undefined);
    const next = paramsFor(current, paramsText);
    keys = next.keys;
    if (next.text !== current) {
      await writeFileAtomic(repo.paramsPath, next.text, { tmpDir: repo.tmpDir });
      written.push('params.yaml');
    }
  }
  if (lockText !== undefined) {
    const current = await readFile(repo.lockfilePath, 'utf8').catch(() => undefined);
    if (current !== lockText) {
      await writeFileAtomic(repo.lockfilePath, lockText, { tmpDir: repo.tmpDir });
      written.push(LOCKFILE_NAME);
    }
  }
  return {
    name,
    commit: e.commit,
    written,
    restored,
    params: keys,
    downloaded,
    lockfile: lockText !== undefined,
  };
}
