/**
 * The roots garbage collection keeps: the workspace lockfile, and the lockfile at every branch,
 * every tag, the last N commits of HEAD and every experiment (`refs/exps/*`, run here or pulled
 * from a teammate; a tuning trial is one too). Each root has a kind, so `gc --dry` can say what
 * each kind keeps, and experiments can be left out on purpose: all of them
 * (`experiments: false`) or those older than a number of days.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import { currentCommit, gitRaw, listRefs, recentCommits } from '../git.ts';

/** Where experiments live as git refs (the experiments module writes them). */
export const EXPERIMENT_REFS = 'refs/exps/';

export type RootKind = 'workspace' | 'branch' | 'tag' | 'commit' | 'experiment';

/** The order kinds are reported in. */
export const ROOT_KINDS: RootKind[] = ['workspace', 'branch', 'tag', 'commit', 'experiment'];

export interface GcRoot {
  kind: RootKind;
  /** `main`, `v1`, a short commit, an experiment name; `workspace` for the working tree. */
  name: string;
  /** Undefined for the workspace. */
  commit?: string;
}

export interface RootOptions {
  /** Commits of HEAD whose lockfiles are kept (default 10). */
  keepLast?: number;
  /** Keep what experiments pin (default true). */
  experiments?: boolean;
  /** Only keep experiments created at most this many days ago (default: all). */
  experimentMaxAgeDays?: number;
  /** "Now" for the age rule (default Date.now()); tests pin it. */
  now?: number;
}

export interface RootSet {
  roots: GcRoot[];
  /** Experiments that are not roots because of `experiments: false` or the age rule. */
  droppedExperiments: string[];
}

/** Every experiment ref with its commit and commit time (ms). */
async function experimentRefs(root: string): Promise<Array<{ name: string; commit: string; time: number }>> {
  const text = await gitRaw(root, [
    'for-each-ref',
    '--format=%(refname)%00%(objectname)%00%(committerdate:unix)',
    EXPERIMENT_REFS,
  ]);
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [ref, commit, unix] = line.split('\0') as [string, string, string];
      return { name: ref.slice(EXPERIMENT_REFS.length), commit, time: Number(unix) * 1000 };
    });
}

/**
 * Lists the roots (see the module comment). Outside git only the workspace counts; inside it,
 * a git failure throws rather than let gc treat every branch's objects as garbage.
 */
export async function listGcRoots(repo: Repo, options: RootOptions = {}): Promise<RootSet> {
  const roots: GcRoot[] = [{ kind: 'workspace', name: 'workspace' }];
  const droppedExperiments: string[] = [];
  if (!fs.existsSync(path.join(repo.root, '.git'))) return { roots, droppedExperiments };
  for (const ref of await listRefs(repo.root))
    roots.push({ kind: ref.kind, name: ref.name, commit: ref.commit });
  // Before the first commit there is no HEAD history to keep.
  if (await currentCommit(repo.root)) {
    for (const c of await recentCommits(repo.root, options.keepLast ?? 10))
      roots.push({ kind: 'commit', name: c.commit.slice(0, 12), commit: c.commit });
  }
  const now = options.now ?? Date.now();
  const maxAge = options.experimentMaxAgeDays;
  for (const e of await experimentRefs(repo.root)) {
    const tooOld = maxAge !== undefined && now - e.time > maxAge * 86_400_000;
    if (options.experiments === false || tooOld) droppedExperiments.push(e.name);
    else roots.push({ kind: 'experiment', name: e.name, commit: e.commit });
  }
  return { roots, droppedExperiments };
}
