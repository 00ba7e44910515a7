/**
 * The experiment queue: `exp run --queue` records entries to run later, `exp queue start -j N`
 * runs them with N at a time (each `runExperiment` in its own worktree, sharing the cache and
 * the run-cache). Entries are files in `.lockstep/queue/` so the queue survives a restart. A
 * running entry holds a claim file (created exclusively, with the worker's pid and worktree); a
 * claim whose process is gone is stale, so an entry whose worker was killed is queued again
 * (and its worktree removed) the next time the queue is read. An experiment's ref is written
 * only when its run finished, so a killed run is never half-recorded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { gitClient } from '../git-client.ts';
import { GitNotFoundError, InterruptedError, LockstepError, isGitNotFound } from '../errors.ts';
import { requireGit } from '../git.ts';
import type { Output } from '../output.ts';
import type { Repo } from '../repo.ts';
import { writeFileAtomic } from '../atomic.ts';
import { checkExperimentName } from './store.ts';
import { runExperiment } from './run.ts';
import { checkGoogleCredentials, parseComputeOverride, type ComputeOverride } from './workspace.ts';

export type QueueState = 'queued' | 'running' | 'done' | 'failed';

export interface QueueEntry {
  name: string;
  overrides: Record<string, unknown>;
  /** Commit the experiment starts from (HEAD when it was queued). */
  base: string;
  /** params.yaml to run with (the workspace's when queued, overrides applied). */
  paramsText: string;
  pipeline?: string;
  /** `--compute` given when it was queued (`exp queue start --compute` overrides it). */
  compute?: ComputeOverride;
  queued: string;
  /** `done` and `failed` are written here; `queued`/`running` follow from the claim file. */
  state: QueueState;
  /** For a running entry: the worker's pid. */
  pid?: number;
  finished?: string;
  /** For a done entry: the experiment's status and commit. */
  result?: { status: string; commit: string; metrics: Record<string, number> };
  error?: string;
}

interface Claim {
  pid: number;
  worktree?: string;
}

function queueDir(repo: Repo): string {
  return path.join(repo.stateDir, 'queue');
}
const entryPath = (repo: Repo, name: string) => path.join(queueDir(repo), `${name}.json`);
const claimPath = (repo: Repo, name: string) => path.join(queueDir(repo), `${name}.claim`);
/** The log of an entry's runs (the experiment's progress and the pipeline's stderr). */
export const queueLogPath = (repo: Repo, name: string) => path.join(queueDir(repo), 'logs', `${name}.log`);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readClaim(repo: Repo, name: string): Claim | undefined {
  try {
    return JSON.parse(fs.readFileSync(claimPath(repo, name), 'utf8')) as Claim;
  } catch {
    return undefined;
  }
}

/** Drops a claim whose worker is gone, and the worktree it left behind. */
async function releaseStale(repo: Repo, name: string, claim: Claim): Promise<void> {
  if (claim.worktree) {
    const git = gitClient(repo.root);
    await git.raw(['worktree', 'remove', '--force', path.join(claim.worktree, 'wt')]).catch(() => undefined);
    fs.rmSync(claim.worktree, { recursive: true, force: true });
    await git.raw(['worktree', 'prune']).catch(() => undefined);
  }
  fs.rmSync(claimPath(repo, name), { force: true });
}

/** Every entry with its current state, oldest first; stale claims are released on the way. */
export async function listQueue(repo: Repo): Promise<QueueEntry[]> {
  const dir = queueDir(repo);
  if (!fs.existsSync(dir)) return [];
  const entries: QueueEntry[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    let e: QueueEntry;
    try {
      e = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as QueueEntry;
    } catch {
      continue; // Written atomically, so only a foreign file fails to parse.
    }
    if (e.state === 'queued' || e.state === 'running') {
      const claim = readClaim(repo, e.name);
      if (claim && isAlive(claim.pid)) Object.assign(e, { state: 'running', pid: claim.pid });
      else {
        if (claim) await releaseStale(repo, e.name, claim);
        Object.assign(e, { state: 'queued', pid: undefined });
      }
    }
    entries.push(e);
  }
  return entries.sort((a, b) =>
    a.queued < b.queued ? -1 : a.queued > b.queued ? 1 : a.name < b.name ? -1 : 1,
  );
}

/** Records entries to run later; a name already queued or running is refused (nothing is written). */
export async function enqueue(
  repo: Repo,
  items: Array<Omit<QueueEntry, 'state' | 'queued'>>,
): Promise<QueueEntry[]> {
  const current = new Map((await listQueue(repo)).map((e) => [e.name, e]));
  const names = new Set<string>();
  for (const item of items) {
    checkExperimentName(item.name);
    const e = current.get(item.name);
    if ((e && (e.state === 'queued' || e.state === 'running')) || names.has(item.name)) {
      throw new LockstepError(
        `exp run --queue: "${item.name}" is already queued. Pick another --name, or remove it (lockstep exp queue remove ${item.name}).`,
      );
    }
    names.add(item.name);
  }
  fs.mkdirSync(queueDir(repo), { recursive: true });
  const queued = new Date().toISOString();
  const written: QueueEntry[] = [];
  for (const item of items) {
    const entry: QueueEntry = { ...item, queued, state: 'queued' };
    await writeFileAtomic(entryPath(repo, item.name), JSON.stringify(entry, null, 2) + '\n', {
      tmpDir: repo.tmpDir,
    });
    written.push(entry);
  }
  return written;
}

/** The entry file of `name` as it is on disk now, or undefined when it is gone or unreadable. */
function readEntry(repo: Repo, name: string): QueueEntry | undefined {
  try {
    return JSON.parse(fs.readFileSync(entryPath(repo, name), 'utf8')) as QueueEntry;
  } catch {
    return undefined;
  }
}

/** Takes the claim on `name` for this process; false when another live worker holds it. */
function claim(repo: Repo, name: string): boolean {
  try {
    fs.writeFileSync(claimPath(repo, name), JSON.stringify({ pid: process.pid }), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/** An Output that appends to the entry's log (and forwards to `out` with the entry's name). */
function logOutput(repo: Repo, name: string, out: Output | undefined): Output {
  const file = queueLogPath(repo, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const write = (line: string) => fs.appendFileSync(file, line.endsWith('\n') ? line : `${line}\n`);
  return {
    out: (line: string) => write(line),
    err: (line: string) => {
      write(line);
      out?.err(`[${name}] ${line}`);
    },
    isTTY: false,
  };
}

export interface QueueRunSummary {
  done: string[];
  failed: string[];
}

/**
 * Claims the first entry of `listed` (a listQueue result) that is still queued. The listing may
 * be old: another `queue start` can have finished an entry (and dropped its claim) or `queue
 * remove` deleted it since, so after the claim only the entry as it is on disk now counts.
 */
export function claimNext(repo: Repo, listed: QueueEntry[]): QueueEntry | undefined {
  for (const e of listed) {
    if (e.state !== 'queued' || !claim(repo, e.name)) continue;
    const now = readEntry(repo, e.name);
    if (now?.state === 'queued' && now.queued === e.queued) return now;
    fs.rmSync(claimPath(repo, e.name), { force: true });
  }
  return undefined;
}

export interface StartQueueOptions {
  /** Experiments at the same time (default 1). */
  jobs?: number;
  out?: Output;
  /** Where every stage of every entry computes (default: the entry's, else the `compute:` config). */
  compute?: ComputeOverride;
}

/**
 * Runs queued entries, `jobs` at a time, until none is left (see the module comment). An entry
 * whose run fails is marked failed with the one-line reason, and no ref is written for it.
 */
export async function startQueue(repo: Repo, options: StartQueueOptions = {}): Promise<QueueRunSummary> {
  const compute = parseComputeOverride(options.compute);
  // Before any entry is claimed: a missing key file would fail every one of them.
  const waiting = (await listQueue(repo)).filter((e) => e.state === 'queued');
  for (const c of new Set(waiting.map((e) => compute ?? e.compute))) checkGoogleCredentials(repo, c);
  // Nor can any run without git (each is a worktree and a ref): say so once, leave them queued.
  if (waiting.length > 0) await requireGit(repo.root);
  const summary: QueueRunSummary = { done: [], failed: [] };
  // Set when a run was interrupted (the signal reached every running worker's child), or found
  // git gone: no worker claims another entry, and the stopped entries go back to the queue.
  let interrupted: InterruptedError | undefined;
  let gitMissing: unknown;
  const next = async (): Promise<QueueEntry | undefined> =>
    interrupted || gitMissing ? undefined : claimNext(repo, await listQueue(repo));
  const worker = async (): Promise<void> => {
    for (let e = await next(); e; e = await next()) {
      const entry = e;
      const out = logOutput(repo, entry.name, options.out);
      let done: QueueEntry;
      try {
        const res = await runExperiment(repo, {
          name: entry.name,
          overrides: entry.overrides,
          base: entry.base,
          paramsText: entry.paramsText,
          pipeline: entry.pipeline,
          compute: compute ?? entry.compute,
          out,
          onWorktree: (worktree) =>
            writeFileAtomic(claimPath(repo, entry.name), JSON.stringify({ pid: process.pid, worktree }), {
              tmpDir: repo.tmpDir,
            }),
        });
        done = {
          ...entry,
          state: 'done',
          finished: new Date().toISOString(),
          result: { status: res.status, commit: res.commit, metrics: res.metrics },
        };
        summary.done.push(entry.name);
      } catch (err) {
        if (err instanceof InterruptedError) {
          interrupted ??= err;
          out.err(err.message);
          fs.rmSync(claimPath(repo, entry.name), { force: true });
          continue;
        }
        if (isGitNotFound(err)) {
          gitMissing ??= err;
          fs.rmSync(claimPath(repo, entry.name), { force: true });
          continue;
        }
        const message = (err as Error).message.split('\n')[0] ?? String(err);
        out.err(`failed: ${message}`);
        done = { ...entry, state: 'failed', finished: new Date().toISOString(), error: message };
        summary.failed.push(entry.name);
      }
      delete done.pid;
      await writeFileAtomic(entryPath(repo, entry.name), JSON.stringify(done, null, 2) + '\n', {
        tmpDir: repo.tmpDir,
      });
      fs.rmSync(claimPath(repo, entry.name), { force: true });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.jobs ?? 1) }, () => worker()));
  if (gitMissing) throw new GitNotFoundError({ cause: gitMissing });
  if (interrupted) {
    throw new InterruptedError(
      `exp queue: interrupted; the running experiments were stopped (their jobs cancelled) and are queued again. Run lockstep exp queue start to go on.`,
      interrupted.exitCode === 143 ? 'SIGTERM' : 'SIGINT',
    );
  }
  return summary;
}

/** Removes entries that are not running (queued, done or failed); returns their names. */
export async function removeFromQueue(repo: Repo, names: string[] | 'all'): Promise<string[]> {
  const entries = await listQueue(repo);
  const targets = names === 'all' ? entries.filter((e) => e.state !== 'running') : [];
  if (names !== 'all') {
    for (const n of names) {
      const e = entries.find((x) => x.name === n);
      if (!e)
        throw new LockstepError(
          `exp queue: "${n}" is not in the queue. List it with lockstep exp queue status.`,
        );
      if (e.state === 'running')
        throw new LockstepError(`exp queue: "${n}" is running (pid ${e.pid}). Stop its worker first.`);
      targets.push(e);
    }
  }
  for (const e of targets) {
    fs.rmSync(entryPath(repo, e.name), { force: true });
    fs.rmSync(queueLogPath(repo, e.name), { force: true });
  }
  return targets.map((e) => e.name);
}
