/**
 * The model registry is git: every commit whose lockfile pins a model is an entry, addressable
 * by commit. Environments are branches; what an environment holds (and held) is read from the
 * first-parent history of its branch. Nothing here is stored outside git and the object store.
 */
import { simpleGit } from 'simple-git';
import { LockstepError } from '../errors.ts';
import { readFileAtRev } from '../git.ts';
import { parseLockfile } from '../lockfile.ts';
import { ENVIRONMENTS } from '../environment/policy.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';
import { environmentBranch, resolveRef, revParse, type ResolvedRef } from '../environment/refs.ts';

/** Which stage outputs make "the model" and "its metrics". Defaults match `lib/paths.ts`. */
export interface RegistryLayout {
  /** Repository-relative path of the model directory (an out of some stage). */
  modelPath: string;
  /** Stage whose lockfile `metrics` are the model's headline metrics. */
  metricsStage: string;
  /** Stage whose metrics carry the gate verdict (`passed`: 1 or 0). */
  gateStage: string;
}

export const DEFAULT_LAYOUT: RegistryLayout = {
  modelPath: 'out/model',
  metricsStage: 'evaluate',
  gateStage: 'gate',
};

export const LOCKFILE = 'artifacts.lock.yaml';

/** Where a model is or was deployed. */
export interface EnvironmentPresence {
  env: string;
  /** `current`: pinned at the branch head; `past`: pinned earlier in the branch's history. */
  state: 'current' | 'past';
}

export interface RegistryEntry {
  commit: string;
  date: string;
  author: string;
  subject: string;
  model: ArtifactRef;
  metrics: Record<string, number>;
  /** `passed` / `failed` from the gate stage's metrics, `unknown` when the gate did not run. */
  gate: 'passed' | 'failed' | 'unknown';
  environments: EnvironmentPresence[];
}

/** Reads and parses the lockfile as of `commit`; undefined when that commit has none. */
export async function readLockfileAt(root: string, commit: string): Promise<Lockfile | undefined> {
  const text = await readFileAtRev(root, commit, LOCKFILE);
  if (text === undefined) return undefined;
  return parseLockfile(text, `${LOCKFILE}@${commit.slice(0, 8)}`);
}

/** The model artifact a lockfile pins, if any. */
export function modelOf(
  lockfile: Lockfile,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): ArtifactRef | undefined {
  for (const entry of Object.values(lockfile.stages)) {
    const out = entry.outs.find((o) => o.path === layout.modelPath);
    if (out) return out;
  }
  return undefined;
}

/** The headline metrics and gate verdict a lockfile records. */
export function metricsOf(
  lockfile: Lockfile,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): { metrics: Record<string, number>; gate: RegistryEntry['gate'] } {
  const metrics = lockfile.stages[layout.metricsStage]?.metrics ?? {};
  const gateMetrics = lockfile.stages[layout.gateStage]?.metrics;
  const passed = gateMetrics?.passed;
  const gate = passed === undefined ? 'unknown' : passed >= 1 ? 'passed' : 'failed';
  return { metrics, gate };
}

interface CommitInfo {
  commit: string;
  date: string;
  author: string;
  subject: string;
}

const SEP = '\x1f';

/** Commits (newest first) that changed the lockfile, across `revs` (default: all refs). */
async function lockfileCommits(
  root: string,
  revs: string[] = ['--all'],
  firstParent = false,
): Promise<CommitInfo[]> {
  const args = ['log', `--format=%H${SEP}%cI${SEP}%an${SEP}%s`];
  if (firstParent) args.push('--first-parent');
  args.push(...revs, '--', LOCKFILE);
  let out: string;
  try {
    out = await simpleGit(root).raw(args);
  } catch {
    return [];
  }
  return out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [commit, date, author, subject] = line.split(SEP);
      return { commit, date, author, subject };
    });
}

/**
 * For each environment, the model hashes its branch pins now (`current`) and pinned before
 * (`past`), from the first-parent history of the branch.
 */
export async function environmentModels(
  root: string,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): Promise<Map<string, { current?: string; past: Set<string>; branch: string; head?: string }>> {
  const result = new Map<string, { current?: string; past: Set<string>; branch: string; head?: string }>();
  for (const env of ENVIRONMENTS) {
    const branch = await environmentBranch(root, env);
    const head = (await revParse(root, branch)) ?? (await revParse(root, `origin/${branch}`));
    const info: { current?: string; past: Set<string>; branch: string; head?: string } = {
      branch,
      head,
      past: new Set(),
    };
    result.set(env, info);
    if (!head) continue;
    const headLock = await readLockfileAt(root, head);
    info.current = headLock ? modelOf(headLock, layout)?.hash : undefined;
    for (const c of await lockfileCommits(root, [head], true)) {
      const lock = await readLockfileAt(root, c.commit);
      const hash = lock ? modelOf(lock, layout)?.hash : undefined;
      if (hash && hash !== info.current) info.past.add(hash);
    }
  }
  return result;
}

function presenceOf(
  hash: string,
  envs: Awaited<ReturnType<typeof environmentModels>>,
): EnvironmentPresence[] {
  const out: EnvironmentPresence[] = [];
  for (const [env, info] of envs) {
    if (info.current === hash) out.push({ env, state: 'current' });
    else if (info.past.has(hash)) out.push({ env, state: 'past' });
  }
  return out;
}

export interface ListOptions {
  /** Revisions to scan (default: all branches and tags). */
  revs?: string[];
  /** At most this many entries, newest first. */
  limit?: number;
  layout?: RegistryLayout;
}

/** Every commit whose lockfile pins a model, newest first, with metrics and where it ran. */
export async function listRegistry(root: string, options: ListOptions = {}): Promise<RegistryEntry[]> {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const envs = await environmentModels(root, layout);
  const entries: RegistryEntry[] = [];
  for (const c of await lockfileCommits(root, options.revs ?? ['--all'])) {
    const lock = await readLockfileAt(root, c.commit);
    const model = lock ? modelOf(lock, layout) : undefined;
    if (!lock || !model) continue;
    entries.push({ ...c, model, ...metricsOf(lock, layout), environments: presenceOf(model.hash, envs) });
    if (options.limit !== undefined && entries.length >= options.limit) break;
  }
  return entries;
}

/** One entry: the model a ref pins, with its lockfile. */
export interface ShownEntry extends RegistryEntry {
  resolved: ResolvedRef;
  lockfile: Lockfile;
}

/**
 * The registry entry at `ref` (commit, branch, tag or environment).
 * @throws LockstepError when the ref has no lockfile or the lockfile pins no model.
 */
export async function showRegistry(
  root: string,
  ref: string,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): Promise<ShownEntry> {
  const resolved = await resolveRef(root, ref);
  const lockfile = await readLockfileAt(root, resolved.commit);
  if (!lockfile) {
    throw new LockstepError(
      `${ref}: ${LOCKFILE} does not exist at ${resolved.commit.slice(0, 8)}. Choose a commit that ran the pipeline.`,
    );
  }
  const model = modelOf(lockfile, layout);
  if (!model) {
    throw new LockstepError(
      `${ref}: ${LOCKFILE} at ${resolved.commit.slice(0, 8)} pins no model (${layout.modelPath}). Run lockstep repro and commit the lockfile.`,
    );
  }
  const [info] = await simpleGit(root)
    .raw(['show', '-s', `--format=%cI${SEP}%an${SEP}%s`, resolved.commit])
    .then((s) => [s.trim().split(SEP)]);
  const envs = await environmentModels(root, layout);
  return {
    commit: resolved.commit,
    date: info[0],
    author: info[1],
    subject: info[2],
    model,
    ...metricsOf(lockfile, layout),
    environments: presenceOf(model.hash, envs),
    resolved,
    lockfile,
  };
}
