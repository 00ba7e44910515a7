/**
 * The model registry is git: every commit whose lockfile pins a model is an entry, addressable
 * by commit. Environments are branches; what an environment holds (and held) is read from the
 * first-parent history of its branch. Nothing here is stored outside git and the object store
 * (the lockfile cache in `.lockstep/` only saves re-parsing immutable blobs).
 *
 * Cost: a listing streams the lockfile's history once (`git log --raw`: commit and blob id) and
 * reads the blobs it has not seen before through one `git cat-file --batch`; reading one entry
 * reads its lockfile and the lockfile at each environment's branch head, whatever the history
 * length. Where a model was deployed before is a walk of each environment's history, so `show`
 * does it only when asked (`history: true`). Sessions and the environments' histories are read
 * in environments.ts.
 */
import { LockstepError } from '../errors.ts';
import { fileHistory, type FileChange } from '../git-log.ts';
import { gitRaw } from '../git.ts';
import { LOCKFILE_NAME, readCommittedLockfile } from '../lockfile.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';
import {
  DEFAULT_LAYOUT,
  metricsOf,
  summarizeBlobs,
  summarizeLockfile,
  type GateState,
  type LockfileSummary,
  type RegistryLayout,
} from './lockfile-cache.ts';
import { resolveRef, type ResolvedRef } from '../environment/refs.ts';
import { modelOf } from '../environment/model.ts';
import {
  currentPresence,
  environmentBlobs,
  environmentHeads,
  environmentModels,
  presenceOf,
  withRegistrySession,
  type EnvironmentHead,
  type EnvironmentPresence,
  type RegistrySession,
} from './environments.ts';

export { DEFAULT_LAYOUT, metricsOf, type RegistryLayout } from './lockfile-cache.ts';

export const LOCKFILE = LOCKFILE_NAME;

export interface RegistryEntry {
  commit: string;
  date: string;
  author: string;
  subject: string;
  model: ArtifactRef;
  metrics: Record<string, number>;
  /** `passed` / `failed` from the gate stage's metrics, `unknown` when the gate did not run. */
  gate: GateState;
  environments: EnvironmentPresence[];
}

export interface ListOptions {
  /** Revisions to scan (default: all branches and tags). */
  revs?: string[];
  /** At most this many entries, newest first. */
  limit?: number;
  /** Only commits newer than this (an ISO date, or what `git log --since` takes). */
  since?: string;
  layout?: RegistryLayout;
}

/** How many history entries are summarized at a time while listing with a limit. */
const CHUNK = 256;

/** Every commit whose lockfile pins a model, newest first, with metrics and where it ran. */
export async function listRegistry(root: string, options: ListOptions = {}): Promise<RegistryEntry[]> {
  return withRegistrySession(
    root,
    async (session) => {
      // The environments' histories are read while the main history streams.
      const envBlobs = environmentBlobs(session);
      envBlobs.catch(() => {});
      const entries: (Omit<RegistryEntry, 'environments'> & { blob: string })[] = [];
      const limit = options.limit ?? Infinity;
      let chunk: FileChange[] = [];
      const flush = async () => {
        const summaries = await summarizeBlobs(
          session.reader,
          session.cache,
          chunk.flatMap((c) => (c.blob ? [c.blob] : [])),
        );
        for (const c of chunk) {
          const s: LockfileSummary | undefined = c.blob ? summaries.get(c.blob) : undefined;
          if (!s?.model || entries.length >= limit) continue;
          const { commit, date, author, subject, blob } = c;
          entries.push({
            commit,
            date,
            author,
            subject,
            model: s.model,
            metrics: s.metrics,
            gate: s.gate,
            blob: blob!,
          });
        }
        chunk = [];
      };
      if (limit > 0) {
        const history = fileHistory(root, LOCKFILE, {
          revs: options.revs ?? ['--all'],
          since: options.since,
          reader: session.reader,
        });
        for await (const c of history) {
          chunk.push(c);
          // Without a limit the whole history is needed anyway: summarize it in one go.
          if (limit !== Infinity && chunk.length >= CHUNK) {
            await flush();
            if (entries.length >= limit) break;
          }
        }
        await flush();
      }
      const pinned = new Map(entries.map((e) => [e.blob, e.model.hash]));
      const unreadable = (await envBlobs).find((e) => e.error);
      if (unreadable) throw unreadable.error;
      const envs = await environmentModels(session, pinned, envBlobs);
      return entries.map(({ blob: _blob, ...e }) => ({ ...e, environments: presenceOf(e.model.hash, envs) }));
    },
    options.layout,
  );
}

/** One entry: the model a ref pins, with its lockfile. */
export interface ShownEntry extends RegistryEntry {
  resolved: ResolvedRef;
  lockfile: Lockfile;
  /**
   * Whether `environments` includes where the model was deployed before (`past`). Without it,
   * only the environments whose branch head pins the model now are listed.
   */
  history: boolean;
  /**
   * Environments that could not be read (a policy file or the lockfile at the branch head does
   * not parse), each as `<env>: <problem>`: whether the model runs there is unknown.
   */
  problems: string[];
  /**
   * With `history` in a shallow clone: the walk stopped at the shallow boundary, so deploys
   * before it are not in `environments`.
   */
  shallow: boolean;
}

export interface ShowOptions {
  /**
   * Also work out which environments pinned the model earlier in their branch's first-parent
   * history (default false). That walks each environment's lockfile history (cached in
   * `.lockstep/` by commit), so its cost grows with the history; without it `show` reads the
   * ref's lockfile and each environment head's, whatever the history length.
   */
  history?: boolean;
  layout?: RegistryLayout;
}

/** The model pinned at a resolved ref, with the lockfile; errors name the ref and the fix. */
async function pinnedAt(
  session: RegistrySession,
  ref: string,
): Promise<{ resolved: ResolvedRef; lockfile: Lockfile; model: ArtifactRef; blob: string }> {
  const resolved = await resolveRef(session.root, ref, session.reader);
  const committed = await readCommittedLockfile(session.reader, resolved.commit);
  if (!committed) {
    throw new LockstepError(
      `${ref}: ${LOCKFILE} does not exist at ${resolved.commit.slice(0, 8)}. Choose a commit that ran the pipeline.`,
    );
  }
  const model = modelOf(committed.lockfile, session.layout.modelPath);
  if (!model) {
    throw new LockstepError(
      `${ref}: ${LOCKFILE} at ${resolved.commit.slice(0, 8)} pins no model (${session.layout.modelPath}). Run lockstep repro and commit the lockfile.`,
    );
  }
  return { resolved, lockfile: committed.lockfile, model, blob: committed.blob };
}

/**
 * The model `ref` (commit, branch, tag or environment) pins, reading that one lockfile.
 * @throws LockstepError when the ref has no lockfile or the lockfile pins no model.
 */
export async function modelAtRef(
  root: string,
  ref: string,
  layout: RegistryLayout = DEFAULT_LAYOUT,
): Promise<{ resolved: ResolvedRef; commit: string; model: ArtifactRef }> {
  return withRegistrySession(
    root,
    async (session) => {
      const { resolved, model } = await pinnedAt(session, ref);
      return { resolved, commit: resolved.commit, model };
    },
    layout,
    { persist: false },
  );
}

const SEP = '\x1f';

/**
 * The registry entry at `ref` (commit, branch, tag or environment), with the environments whose
 * branch head pins its model, and with `history` those that pinned it before.
 * @throws LockstepError when the ref has no lockfile or the lockfile pins no model.
 */
export async function showRegistry(
  root: string,
  ref: string,
  { history = false, layout = DEFAULT_LAYOUT }: ShowOptions = {},
): Promise<ShownEntry> {
  return withRegistrySession(
    root,
    async (session) => {
      // The environments' heads (and with `history` their histories) are read while the ref's
      // own lockfile is read and parsed.
      const heads = environmentHeads(session);
      const walked = history ? environmentBlobs(session, heads) : undefined;
      heads.catch(() => {});
      walked?.catch(() => {});
      const { resolved, lockfile, model, blob } = await pinnedAt(session, ref);
      // Already parsed: an environment head holding the same blob is not parsed again.
      session.cache.set(blob, summarizeLockfile(lockfile, layout));
      const [info, environments] = await Promise.all([
        gitRaw(root, ['show', '-s', `--format=%cI${SEP}%an${SEP}%s`, resolved.commit]),
        walked
          ? environmentModels(session, new Map([[blob, model.hash]]), walked).then((envs) =>
              presenceOf(model.hash, envs),
            )
          : heads.then((h) => currentPresence(session, h, model.hash)),
      ]);
      const problems = await headProblems(session, await heads);
      const [date, author, subject] = info.trim().split(SEP);
      return {
        commit: resolved.commit,
        date: date!,
        author: author!,
        subject: subject!,
        model,
        ...metricsOf(lockfile, layout),
        environments,
        resolved,
        lockfile,
        history,
        problems,
        shallow: history && session.shallow,
      };
    },
    layout,
    // Without the history walk only a few lockfiles are read: the cache file would cost more.
    { persist: history },
  );
}

/** `<env>: <problem>` for each environment whose policy or head lockfile does not parse. */
async function headProblems(session: RegistrySession, heads: EnvironmentHead[]): Promise<string[]> {
  const blobs = heads.flatMap((e) => (e.headBlob ? [e.headBlob] : []));
  const summaries = await summarizeBlobs(session.reader, session.cache, blobs);
  return heads.flatMap((e) => {
    const why = e.error?.message ?? (e.headBlob ? summaries.get(e.headBlob)?.invalid : undefined);
    return why ? [`${e.env}: ${why}`] : [];
  });
}
