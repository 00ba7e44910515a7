/**
 * Registry sessions and the environments' side of the registry: what each environment's branch
 * pins at its head and pinned earlier in its first-parent history (walks cached by commit in the
 * lockfile cache), and so where a model is or was deployed.
 */
import path from 'node:path';
import { fileHistory } from '../git-log.ts';
import { GitReader, withGitReader } from '../git-reader.ts';
import { hasReplaceRefs, isShallowRepository } from '../git.ts';
import { LockstepError } from '../errors.ts';
import { LOCKFILE_NAME } from '../lockfile.ts';
import { ENVIRONMENTS } from '../environment/policy.ts';
import { environmentBranch } from '../environment/refs.ts';
import { DEFAULT_LAYOUT, LockfileCache, summarizeBlobs, type RegistryLayout } from './lockfile-cache.ts';

/** Where a model is or was deployed. */
export interface EnvironmentPresence {
  env: string;
  /** `current`: pinned at the branch head; `past`: pinned earlier in the branch's history. */
  state: 'current' | 'past';
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
  for await (const c of fileHistory(root, LOCKFILE_NAME, { revs: [head], firstParent: true, reader })) {
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
  for await (const c of fileHistory(session.root, LOCKFILE_NAME, options)) if (c.blob) blobs.push(c.blob);
  return blobs;
}

/** An environment's branch, its head commit and the lockfile blob there (as of now). */
export interface EnvironmentHead {
  env: string;
  branch: string;
  head?: string;
  headBlob?: string;
  /** Why the environment could not be read (its policy file does not parse). */
  error?: Error;
}

/** Each environment's branch head and lockfile blob: a few object reads, whatever the history. */
export async function environmentHeads(session: RegistrySession): Promise<EnvironmentHead[]> {
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
      return { env, branch, head, headBlob: (await reader.fileAt(head, LOCKFILE_NAME))?.oid };
    }),
  );
}

/** Each environment's branch, head commit, and the lockfile blobs of its first-parent history. */
export async function environmentBlobs(
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

export function presenceOf(hash: string, envs: Map<string, EnvironmentModels>): EnvironmentPresence[] {
  const out: EnvironmentPresence[] = [];
  for (const [env, info] of envs) {
    if (info.current === hash) out.push({ env, state: 'current' });
    else if (info.past.has(hash)) out.push({ env, state: 'past' });
  }
  return out;
}

/** The environments whose branch head pins `hash` now. */
export async function currentPresence(
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
