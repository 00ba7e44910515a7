/**
 * The repository lock: `.lockstep/lock` holds `{pid, hostname, command, started}` and exists while
 * a state-changing command (`repro`, `push`, `pull`, `add`, ...) runs. It is created atomically
 * (written to a temp file, then hard-linked into place, which fails if the lock exists: O_EXCL
 * semantics without a window where the file is empty). A second command waits, saying who holds
 * it, up to a timeout; a lock whose process is gone (same host, dead pid) is cleared.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Repo } from './repo.ts';
import type { Output } from './output.ts';
import { LockedError } from './errors.ts';
import { isProcessAlive } from './process.ts';
import { sweepCacheTemps, sweepTempFiles, tempPathFor } from './atomic.ts';

export interface LockInfo {
  pid: number;
  hostname: string;
  /** The command holding it (`repro`, `push`). */
  command: string;
  /** ISO 8601 start time. */
  started: string;
}

export interface RepoLockOptions {
  /** How long to wait for another holder, in ms. Default: `LOCKSTEP_LOCK_TIMEOUT_MS` or 300 000 (5 min). */
  timeoutMs?: number;
  /** Poll interval while waiting, in ms. Default 100. */
  pollMs?: number;
  /** Where the "waiting for ..." line goes (stderr). Default: nowhere. */
  out?: Output;
}

/** Repositories whose lock this process holds (a nested command reuses it instead of deadlocking). */
const held = new Map<string, number>();

/** Path of the lock file of `repo`. */
export function lockPath(repo: Repo): string {
  return path.join(repo.stateDir, 'lock');
}

/** Who holds the lock, or undefined when it is free (or unreadable mid-replacement). */
export function readLock(repo: Repo): LockInfo | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(lockPath(repo), 'utf8')) as LockInfo;
    return typeof info.pid === 'number' ? info : undefined;
  } catch {
    return undefined;
  }
}

function isStale(info: LockInfo): boolean {
  return info.hostname === os.hostname() && !isProcessAlive(info.pid);
}

/** Tries once to take the lock; returns the holder's info when it is taken by someone else. */
function tryAcquire(repo: Repo, info: LockInfo): LockInfo | undefined {
  const file = lockPath(repo);
  // The temp file lives in .lockstep/tmp, where the sweep clears it if this process is killed.
  fs.mkdirSync(repo.tmpDir, { recursive: true });
  const tmp = tempPathFor(file, repo.tmpDir);
  fs.writeFileSync(tmp, JSON.stringify(info) + '\n', { flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readLock(repo) ?? { pid: -1, hostname: '?', command: '?', started: '' };
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Clears a lock left by a dead process. The lock is first renamed aside so two waiters cannot both
 * delete: only the one whose rename moved the stale content removes it; a live lock moved by
 * mistake is linked back.
 */
function clearStale(repo: Repo, stale: LockInfo): void {
  const file = lockPath(repo);
  const aside = `${file}.${randomBytes(6).toString('hex')}.stale`;
  try {
    fs.renameSync(file, aside);
  } catch {
    return;
  }
  let moved: LockInfo | undefined;
  try {
    moved = JSON.parse(fs.readFileSync(aside, 'utf8')) as LockInfo;
  } catch {
    moved = undefined;
  }
  if (moved && (moved.pid !== stale.pid || moved.started !== stale.started)) {
    try {
      fs.linkSync(aside, file);
    } catch {
      // Someone else took the lock meanwhile; the one we moved belongs to a live process that
      // will remove it by content match, so nothing is lost by dropping it.
    }
  }
  fs.rmSync(aside, { force: true });
}

function isOldDebris(repo: Repo): boolean {
  try {
    return Date.now() - fs.statSync(lockPath(repo)).mtimeMs > 5_000 && readLock(repo) === undefined;
  } catch {
    return false;
  }
}

function describe(info: LockInfo): string {
  return `lockstep pid ${info.pid} (${info.command})`;
}

/**
 * Runs `fn` holding the repository lock. Waits for another holder (printing "waiting for lockstep
 * pid 123 (repro)" once) up to `timeoutMs`, then throws LockedError. Re-entrant within a process.
 */
export async function withRepoLock<T>(
  repo: Repo,
  command: string,
  fn: () => Promise<T>,
  options: RepoLockOptions = {},
): Promise<T> {
  const key = repo.root;
  if (held.has(key)) {
    held.set(key, held.get(key)! + 1);
    try {
      return await fn();
    } finally {
      held.set(key, held.get(key)! - 1);
    }
  }
  const envTimeout = Number(process.env.LOCKSTEP_LOCK_TIMEOUT_MS);
  const timeoutMs =
    options.timeoutMs ?? (Number.isFinite(envTimeout) && envTimeout >= 0 ? envTimeout : 300_000);
  const pollMs = options.pollMs ?? 100;
  const info: LockInfo = {
    pid: process.pid,
    hostname: os.hostname(),
    command,
    started: new Date().toISOString(),
  };
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  while (true) {
    const holder = tryAcquire(repo, info);
    if (!holder) break;
    // An unreadable lock cannot come from withRepoLock (it links complete files); if it stays
    // unreadable for a few seconds it is debris, not a holder.
    if (holder.pid < 0 && isOldDebris(repo)) {
      options.out?.err('clearing unreadable .lockstep/lock');
      fs.rmSync(lockPath(repo), { force: true });
      continue;
    }
    if (holder.pid > 0 && isStale(holder)) {
      options.out?.err(`clearing stale lock of ${describe(holder)}: process is gone`);
      clearStale(repo, holder);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new LockedError(
        `.lockstep/lock: held by ${describe(holder)} on ${holder.hostname} since ${holder.started}; gave up after ${timeoutMs < 1000 ? `${timeoutMs}ms` : `${Math.round(timeoutMs / 1000)}s`}. Wait for it to finish (or remove .lockstep/lock if that process is gone) and retry.`,
      );
    }
    if (!announced) {
      options.out?.err(`waiting for ${describe(holder)}`);
      announced = true;
    }
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, deadline - Date.now()))));
  }
  held.set(key, 1);
  // Holding the lock, clear temp files of writers killed between write and rename.
  sweepTempFiles(repo.tmpDir);
  sweepCacheTemps(path.join(repo.cacheDir, 'tmp'));
  try {
    return await fn();
  } finally {
    held.delete(key);
    const now = readLock(repo);
    if (now && now.pid === info.pid && now.started === info.started)
      fs.rmSync(lockPath(repo), { force: true });
  }
}
