/**
 * The hash state: repository-relative path -> (dev, inode, size, mtime_ns) and the sha256 seen
 * for exactly that stat, so unchanged files are never re-read. One JSON file
 * (`.lockstep/state/hashes.json`, `{"v":1,"files":{path:[statKey, oid]}}`), loaded once per
 * process and repository and written atomically when it changed. 10,000 entries are ~1.2 MB and
 * load in a few milliseconds.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { Oid } from '../types.ts';
import { writeFileAtomic } from '../atomic.ts';

interface StateFile {
  v: 1;
  files: Record<string, [string, Oid]>;
}

/** `dev:ino:size:mtimeNs` of a bigint stat. */
export function statKey(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

/** Files modified less than this before they were hashed are not recorded (see `record`). */
export const RACY_MS = 100;

function mtimeMsOf(key: string): number {
  return Number(BigInt(key.slice(key.lastIndexOf(':') + 1)) / 1_000_000n);
}

export class HashState {
  readonly file: string;
  private files: Map<string, [string, Oid]>;
  private dirty = false;

  constructor(file: string, files: Map<string, [string, Oid]>) {
    this.file = file;
    this.files = files;
  }

  /** The oid recorded for `rel` if its stat key still matches. */
  lookup(rel: string, key: string): Oid | undefined {
    const hit = this.files.get(rel);
    return hit && hit[0] === key ? hit[1] : undefined;
  }

  /** The oid last recorded for `rel`, whatever its stat key. */
  previous(rel: string): Oid | undefined {
    return this.files.get(rel)?.[1];
  }

  /**
   * Records `oid` for `rel` at stat `key`, unless the file's mtime is within RACY_MS of
   * `hashedAtMs` (when its bytes were read): file timestamps come from a coarse clock, so a write
   * in the same tick would leave the stat key unchanged. Such a file is simply hashed again next
   * time (as git does with racily clean index entries).
   */
  record(rel: string, key: string, oid: Oid, hashedAtMs: number): void {
    if (mtimeMsOf(key) > hashedAtMs - RACY_MS) {
      if (this.files.delete(rel)) this.dirty = true;
      return;
    }
    const hit = this.files.get(rel);
    if (hit && hit[0] === key && hit[1] === oid) return;
    this.files.set(rel, [key, oid]);
    this.dirty = true;
  }

  /** True when any entry lies under directory `rel`. */
  hasUnder(rel: string): boolean {
    const prefix = rel + '/';
    for (const key of this.files.keys()) if (key.startsWith(prefix)) return true;
    return false;
  }

  /** Forgets entries under directory `rel` that are not in `present` (files deleted since). */
  prune(rel: string, present: Set<string>): void {
    const prefix = rel + '/';
    for (const key of this.files.keys()) {
      if (key.startsWith(prefix) && !present.has(key)) {
        this.files.delete(key);
        this.dirty = true;
      }
    }
  }

  /** Forgets entries under `rel` (a file, or a directory prefix). */
  forget(rel: string): void {
    for (const key of this.files.keys()) {
      if (key === rel || key.startsWith(rel + '/')) {
        this.files.delete(key);
        this.dirty = true;
      }
    }
  }

  get size(): number {
    return this.files.size;
  }

  /**
   * Writes the state if it changed (temp + rename). A state that cannot be written (a read-only
   * `.lockstep/state`) is not an error: the command still answers, and hashes again next time.
   */
  async save(): Promise<void> {
    if (!this.dirty) return;
    const body: StateFile = { v: 1, files: Object.fromEntries(this.files) };
    try {
      // No fsync: after a power loss a lost or torn state only costs re-hashing.
      await writeFileAtomic(this.file, JSON.stringify(body), { sync: false });
      this.dirty = false;
    } catch {
      // Left dirty: a later save in this process tries again.
    }
  }
}

const loaded = new Map<string, HashState>();

/** The hash state of `repo`, read from disk on first use in this process. */
export function loadHashState(repo: Repo): HashState {
  const file = path.join(repo.stateDir, 'state', 'hashes.json');
  const cached = loaded.get(file);
  if (cached) return cached;
  let files = new Map<string, [string, Oid]>();
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as StateFile;
    if (parsed && parsed.v === 1 && parsed.files && typeof parsed.files === 'object') {
      files = new Map(Object.entries(parsed.files));
    }
  } catch {
    // Missing or unreadable state only costs re-hashing; it is rebuilt on the next save.
  }
  const state = new HashState(file, files);
  loaded.set(file, state);
  return state;
}

/** Drops the in-process copy (tests that edit the state file directly). */
export function unloadHashState(repo: Repo): void {
  loaded.delete(path.join(repo.stateDir, 'state', 'hashes.json'));
}
