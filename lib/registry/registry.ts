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
 * does it only when asked (`history: true`).
 */
import path from 'node:path';
import { simpleGit } from 'simple-git';
import { LockstepError } from '../errors.ts';
import { fileHistory, type FileChange } from '../git-log.ts';
import { GitReader, withGitReader } from '../git-reader.ts';
import { LOCKFILE_NAME, readCommittedLockfile } from '../lockfile.ts';
import { ENVIRONMENTS } from '../environment/policy.ts';
import type { ArtifactRef, Lockfile } from '../types.ts';
import {
  DEFAULT_LAYOUT,
  LockfileCache,
  metricsOf,
  modelOf,
  summarizeBlobs,
  summarizeLockfile,
  type GateState,
  type LockfileSummary,
  type RegistryLayout,
} from './lockfile-cache.ts';
import { environmentBranch, resolveRef, type ResolvedRef } from '../environment/refs.ts';
import { hasReplaceRefs, isShallowRepository } from '../git.ts';

export { DEFAULT_LAYOUT, metricsOf, modelOf, type RegistryLayout } from './lockfile-cache.ts';

export const LOCKFILE = LOCKFILE_NAME;

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
  gate: GateState;
  environments: EnvironmentPresence[];
}

/** What one command reads the registry through: one git object reader and the lockfile cache. */
export interface RegistrySession {
  root: string;
  reader: GitReader;
  cache: LockfileCache;
  layout: RegistryLayout;
  /** The clone is shallow (only known for sessions that persist the cache): history walks stop early. */
  shallow: boolean;
}

/**
 * Runs `fn` with a registry session for the repository at `root`: opens the reader and the
 * cache, and afterwards saves what was newly parsed and stops git.
 */
export async function withRegistrySession<T>(
  root: string,
  fn: (session: RegistrySession) => Promise<T>,
  layout: RegistryLayout = DEFAULT_LAYOUT,
  { persist = true }: { persist?: boolean } = {},
): Promise<T> {
  return withGitReader(root, async (reader) => {
    // Links are only kept in the file: without it, whether the clone is shallow does not matter.
    // With replacement objects an id no longer fixes its content (the cache's premise), so the
    // file is neither read nor written: entries live for this command only.
    const [shallow, replaced] = persist
      ? await Promise.all([isShallowRepository(root), hasReplaceRefs(root)])
      : [false, false];
    const keep = persist && !replaced;
    const cache = LockfileCache.load(path.join(root, '.lockstep'), layout, {
      links: keep && !shallow,
      persist: keep,
    });
    const result = await fn({ root, reader, cache, layout, shallow });
    await cache.save();
    return result;
  });
}

/** What an environment's branch pins now and pinned before. */
export interface EnvironmentModels {
  branch: string;
  head?: string;
  /** Model hash pinned at the branch head. */
  current?: string;
  /** Model hashes pinned earlier on the branch's first-parent history (not `current`). */
  past: Set<string>;
}

/**
 * The lockfile blobs of `head`'s first-parent history, newest first. The walk (`git log
 * --first-parent --raw`) stops at the first commit whose chain is cached, so once a branch has
 * been read, reading it again costs one git start-up however long its history is.
 */
export async function firstParentBlobs(session: RegistrySession, head: string): Promise<string[]> {
  const { root, reader, cache } = session;
  const walked: { commit: string; blob: string }[] = [];
  let joined: string | undefined;
  for await (const c of fileHistory(root, LOCKFILE, { revs: [head], firstParent: true, reader })) {
    if (cache.link(c.commit)) {
      joined = c.commit;
      break;
    }
    walked.push({ commit: c.commit, blob: c.blob ?? '' });
  }
  walked.forEach((w, i) =>
    cache.setLink(w.commit, { blob: w.blob, next: walked[i + 1]?.commit ?? joined ?? '' }),
  );
  const blobs = walked.map((w) => w.blob);
  const seen = new Set<string>();
  for (let at = joined; at;) {
    const link = cache.link(at);
    // A link missing mid-chain, or a loop (a hand-edited cache), cannot be trusted: walk afresh.
    if (!link || seen.has(at)) return firstParentBlobsUncached(session, head);
    seen.add(at);
    blobs.push(link.blob);
    at = link.next;
  }
  return blobs.filter(Boolean);
}

async function firstParentBlobsUncached(session: RegistrySession, head: string): Promise<string[]> {
  const blobs: string[] = [];
  const options = { revs: [head], firstParent: true, reader: session.reader };
  for await (const c of fileHistory(session.root, LOCKFILE, options)) if (c.blob) blobs.push(c.blob);
  return blobs;
}

/** An environment's branch, its head commit and the lockfile blob there (as of now). */
interface EnvironmentHead {
  env: string;
  branch: string;
  head?: string;
  headBlob?: string;
  /** Why the environment could not be read (its policy file does not parse). */
  error?: Error;
}

/** Each environment's branch head and lockfile blob: a few object reads, whatever the history. */
async function environmentHeads(session: RegistrySession): Promise<EnvironmentHead[]> {
  const { root, reader } = session;
  return Promise.all(
    ENVIRONMENTS.map(async (env) => {
      let branch: string;
      try {
        branch = await environmentBranch(root, env);
      } catch (err) {
        if (!(err instanceof LockstepError)) throw err;
        return { env, branch: env, error: err };
      }
      const head =
        (await reader.revParse(`refs/heads/${branch}`)) ??
        (await reader.revParse(`refs/remotes/origin/${branch}`));
      if (!head) return { env, branch };
      return { env, branch, head, headBlob: (await reader.fileAt(head, LOCKFILE))?.oid };
    }),
  );
}

/** Each environment's branch, head commit, and the lockfile blobs of its first-parent history. */
async function environmentBlobs(
  session: RegistrySession,
  heads: Promise<EnvironmentHead[]> = environmentHeads(session),
): Promise<(EnvironmentHead & { blobs: string[] })[]> {
  return Promise.all(
    (await heads).map(async (e) => ({
      ...e,
      blobs: e.head ? await firstParentBlobs(session, e.head) : [],
    })),
  );
}

/**
 * For each environment, the model its branch pins now (`current`) and pinned before (`past`),
 * from the first-parent history of the branch. With `pinned` (lockfile blob id → the model it
 * pins, for the entries being shown), `past` is only worked out for those models: a branch
 * holding one of those blobs pinned its model, and only when some model is not found that way
 * are the branch's other lockfiles that mention it parsed. `blobs` is the result of an
 * {@link environmentBlobs} started earlier, to overlap its git work with the caller's.
 */
export async function environmentModels(
  session: RegistrySession,
  pinned?: ReadonlyMap<string, string>,
  blobs: ReturnType<typeof environmentBlobs> = environmentBlobs(session),
): Promise<Map<string, EnvironmentModels>> {
  const { reader, cache } = session;
  const out = new Map<string, EnvironmentModels>();
  for (const e of await blobs) {
    const info: EnvironmentModels = { branch: e.branch, head: e.head, past: new Set() };
    out.set(e.env, info);
    if (e.headBlob)
      info.current = (await summarizeBlobs(reader, cache, [e.headBlob])).get(e.headBlob)?.model?.hash;
    const wanted = pinned ? new Set(pinned.values()) : undefined;
    if (pinned && wanted) {
      for (const blob of e.blobs) {
        const hash = pinned.get(blob);
        if (hash === undefined) continue;
        if (hash !== info.current) info.past.add(hash);
        wanted.delete(hash);
      }
      if (info.current) wanted.delete(info.current);
      if (wanted.size === 0) continue;
    }
    const summaries = await summarizeBlobs(reader, cache, e.blobs, { mentioning: wanted });
    for (const s of summaries.values()) {
      const hash = s.model?.hash;
      if (hash && hash !== info.current && (!wanted || wanted.has(hash))) info.past.add(hash);
    }
  }
  return out;
}

function presenceOf(hash: string, envs: Map<string, EnvironmentModels>): EnvironmentPresence[] {
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
  const model = modelOf(committed.lockfile, session.layout);
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
        simpleGit(root).raw(['show', '-s', `--format=%cI${SEP}%an${SEP}%s`, resolved.commit]),
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

/** The environments whose branch head pins `hash` now. */
async function currentPresence(
  session: RegistrySession,
  heads: EnvironmentHead[],
  hash: string,
): Promise<EnvironmentPresence[]> {
  const blobs = heads.flatMap((e) => (e.headBlob ? [e.headBlob] : []));
  const summaries = await summarizeBlobs(session.reader, session.cache, blobs);
  return heads
    .filter((e) => e.headBlob && summaries.get(e.headBlob)?.model?.hash === hash)
    .map((e) => ({ env: e.env, state: 'current' as const }));
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
