/**
 * Sharing experiments between clones: `exp push <git-remote> [names]` uploads the artifacts the
 * experiments' lockfiles pin to the artifact remote (only what it lacks, verified before upload),
 * then pushes their refs, so a ref on the git remote never points at artifacts nobody can fetch.
 * `exp pull <git-remote> [names]` fetches the refs, then downloads what the local cache lacks
 * (verified before it enters the cache), and records where each experiment came from.
 * Neither replaces a teammate's experiment of the same name unless asked (`force`): push refuses
 * when the git remote's ref points at a commit this clone neither pushed nor pulled there, and
 * the ref update itself is leased on the commit seen, so a push racing another one fails too.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gitClient } from '../git-client.ts';
import { writeFileAtomic } from '../atomic.ts';
import { IntegrityError, LockstepError, isGitNotFound } from '../errors.ts';
import { readCommittedLockfileAt } from '../environment/revision.ts';
import type { Output } from '../output.ts';
import type { Repo } from '../repo.ts';
import { artifactObjects, dirsOf, lockfileArtifacts } from '../store/artifacts.ts';
import { fetchArtifacts } from '../store/availability.ts';
import { Cache } from '../store/cache.ts';
import { resolveRemote } from '../store/sync.ts';
import { pushObjects } from '../store/transfer.ts';
import type { ArtifactRef } from '../types.ts';
import { EXP_REF_PREFIX, experimentLockfileLabels, listExperiments, type Experiment } from './store.ts';
import { readOrigins, writeOrigins } from './origins.ts';

export interface ShareOptions {
  /** Artifact remote URL or path (default: the configured remote). */
  remote?: string;
  /**
   * Replace experiments of the same name that point elsewhere: local ones (pull), or the git
   * remote's that this clone did not push or pull (push). Default false.
   */
  force?: boolean;
  out?: Output;
}

export interface ShareSummary {
  gitRemote: string;
  remote: string;
  experiments: string[];
  /** Objects moved; for push also those the remote already had and the bytes moved. */
  transferred: number;
  skipped?: number;
  bytes?: number;
}

/** The artifacts an experiment's lockfile pins (none when it has no lockfile). */
async function experimentArtifacts(repo: Repo, e: Experiment): Promise<ArtifactRef[]> {
  const committed = await readCommittedLockfileAt(repo.root, e.commit, experimentLockfileLabels(e.name));
  if (!committed) return [];
  const refs = lockfileArtifacts(committed.lockfile);
  return [...new Map(refs.map((r) => [`${r.path}\0${r.hash}`, r])).values()];
}

function pick(all: Experiment[], names: string[], where: string): Experiment[] {
  if (names.length === 0) return all;
  return names.map((n) => {
    const e = all.find((x) => x.name === n);
    if (!e)
      throw new LockstepError(`experiment "${n}": not found ${where}. List them with lockstep exp show.`);
    return e;
  });
}

/** Pushes experiments' artifacts, then their refs (see the module comment). */
export async function pushExperiments(
  repo: Repo,
  gitRemote: string,
  names: string[],
  options: ShareOptions = {},
): Promise<ShareSummary> {
  const chosen = pick(await listExperiments(repo.root), names, 'in this clone');
  if (chosen.length === 0)
    throw new LockstepError('exp push: no experiments to push. Run one with lockstep exp run.');
  const there = await remoteExperiments(repo, gitRemote, 'push');
  const known = knownCommits(repo, gitRemote);
  const clash = chosen.filter((e) => {
    const theirs = there.get(e.name);
    return theirs !== undefined && theirs !== e.commit && !known[e.name]?.includes(theirs);
  });
  if (clash.length > 0 && !options.force) {
    throw new LockstepError(
      `exp push: ${gitRemote} holds other experiments of the same name "${clash.map((e) => e.name).join(', ')}" (pushed from another clone). Rename yours (exp run --name), look at theirs (lockstep exp pull ${gitRemote} --force into another clone), or pass --force to replace them; nothing was pushed.`,
    );
  }
  const remote = await resolveRemote(repo, options.remote);
  const cache = new Cache(repo, { out: options.out });
  const oids: string[] = [];
  const manifests: string[] = [];
  const incomplete: string[] = [];
  for (const e of chosen) {
    const refs = await experimentArtifacts(repo, e);
    const { missing } = await fetchArtifacts(repo, refs, { out: options.out });
    if (missing.length > 0) {
      incomplete.push(`${e.name}: ${missing.map((m) => m.path).join(', ')}`);
      continue;
    }
    for (const ref of refs) oids.push(...(await artifactObjects(repo, ref, { cache })));
    manifests.push(...dirsOf(refs));
  }
  if (incomplete.length > 0) {
    throw new IntegrityError(
      `exp push: outputs missing from the local cache "${incomplete.join('; ')}". Pull them (lockstep exp pull) or re-run the experiment; nothing was pushed.`,
    );
  }
  const moved = await pushObjects(repo, remote, oids, { out: options.out, manifests });
  const refs = chosen.map((e) => `${EXP_REF_PREFIX}${e.name}`);
  // Leased on what the remote held a moment ago (nothing, for a new name): a concurrent push of
  // the same name from another clone makes this one fail instead of silently replacing it.
  const leases = options.force
    ? []
    : chosen.map((e) => `--force-with-lease=${EXP_REF_PREFIX}${e.name}:${there.get(e.name) ?? ''}`);
  await gitOrThrow(
    repo,
    ['push', '--quiet', ...leases, gitRemote, ...refs.map((r) => `${options.force ? '+' : ''}${r}:${r}`)],
    `exp push ${gitRemote}`,
  );
  await recordPushed(
    repo,
    gitRemote,
    chosen.map((e) => [e.name, e.commit]),
  );
  return { gitRemote, remote: remote.url, experiments: chosen.map((e) => e.name), ...moved };
}

/** Where this clone records the commits it pushed: git remote → name → commits. */
function pushedPath(repo: Repo): string {
  return path.join(repo.stateDir, 'exp-pushed.json');
}

function readPushed(repo: Repo): Record<string, Record<string, string[]>> {
  try {
    return JSON.parse(fs.readFileSync(pushedPath(repo), 'utf8')) as Record<string, Record<string, string[]>>;
  } catch {
    return {};
  }
}

/** Commits of each name this clone pushed to, or pulled from, `gitRemote`: replacing them is fine. */
function knownCommits(repo: Repo, gitRemote: string): Record<string, string[]> {
  const known: Record<string, string[]> = { ...readPushed(repo)[gitRemote] };
  for (const [name, o] of Object.entries(readOrigins(repo)))
    if (o.remote === gitRemote) known[name] = [...(known[name] ?? []), o.commit];
  return known;
}

async function recordPushed(repo: Repo, gitRemote: string, pushed: Array<[string, string]>): Promise<void> {
  const all = readPushed(repo);
  const mine = (all[gitRemote] ??= {});
  for (const [name, commit] of pushed) mine[name] = [...new Set([...(mine[name] ?? []), commit])].slice(-20);
  fs.mkdirSync(repo.stateDir, { recursive: true });
  await writeFileAtomic(pushedPath(repo), JSON.stringify(all, null, 2) + '\n', { tmpDir: repo.tmpDir });
}

/** Experiment refs on a git remote: name → commit. */
async function remoteExperiments(
  repo: Repo,
  gitRemote: string,
  verb: 'push' | 'pull' = 'pull',
): Promise<Map<string, string>> {
  const text = await gitOrThrow(
    repo,
    ['ls-remote', gitRemote, `${EXP_REF_PREFIX}*`],
    `exp ${verb} ${gitRemote}`,
  );
  const found = new Map<string, string>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [commit, ref] = line.split('\t') as [string, string];
    found.set(ref.slice(EXP_REF_PREFIX.length), commit);
  }
  return found;
}

/** Fetches experiments' refs, then their artifacts (see the module comment). */
export async function pullExperiments(
  repo: Repo,
  gitRemote: string,
  names: string[],
  options: ShareOptions = {},
): Promise<ShareSummary> {
  const available = await remoteExperiments(repo, gitRemote);
  for (const n of names) {
    if (!available.has(n))
      throw new LockstepError(
        `experiment "${n}": not found on ${gitRemote}. Push it there with lockstep exp push.`,
      );
  }
  const wanted = names.length > 0 ? names : [...available.keys()].sort();
  if (wanted.length === 0)
    throw new LockstepError(`exp pull: ${gitRemote} has no experiments. Push some with lockstep exp push.`);
  const remote = await resolveRemote(repo, options.remote);
  const local = new Map((await listExperiments(repo.root)).map((e) => [e.name, e.commit]));
  const clash = wanted.filter((n) => local.has(n) && local.get(n) !== available.get(n));
  if (clash.length > 0 && !options.force) {
    throw new LockstepError(
      `exp pull: local experiments differ from ${gitRemote}'s "${clash.join(', ')}". Rename or remove them (lockstep exp remove), or pass --force to replace them.`,
    );
  }
  const refspecs = wanted.map((n) => `+${EXP_REF_PREFIX}${n}:${EXP_REF_PREFIX}${n}`);
  await gitOrThrow(repo, ['fetch', '--quiet', gitRemote, ...refspecs], `exp pull ${gitRemote}`);
  const pulled = (await listExperiments(repo.root)).filter((e) => wanted.includes(e.name));
  let transferred = 0;
  const incomplete: string[] = [];
  for (const e of pulled) {
    const { missing, downloaded } = await fetchArtifacts(repo, await experimentArtifacts(repo, e), {
      remote,
      out: options.out,
    });
    transferred += downloaded;
    if (missing.length > 0) incomplete.push(`${e.name}: ${missing.map((m) => m.path).join(', ')}`);
  }
  const origins = readOrigins(repo);
  for (const e of pulled) origins[e.name] = { remote: gitRemote, commit: e.commit };
  await writeOrigins(repo, origins);
  if (incomplete.length > 0) {
    throw new IntegrityError(
      `exp pull: outputs missing from ${remote.url} "${incomplete.join('; ')}". The refs were pulled; push the artifacts from the clone that ran them (lockstep exp push) and pull again.`,
    );
  }
  return { gitRemote, remote: remote.url, experiments: wanted, transferred };
}

async function gitOrThrow(repo: Repo, args: string[], what: string): Promise<string> {
  try {
    return await gitClient(repo.root).raw(args);
  } catch (err) {
    // No git to run is said as such, not as a remote that cannot be reached.
    if (isGitNotFound(err)) throw err;
    const first = (err as Error).message.trim().split('\n')[0];
    throw new LockstepError(
      `${what}: git ${args[0]} failed (${first}). Check the remote's name or URL and your access.`,
    );
  }
}
