/**
 * Writers in flight: a process that puts objects into the shared cache before any root pins
 * them (an experiment running in its own worktree writes every stage's outputs long before its
 * `refs/exps/<name>` ref exists) registers itself in `.lockstep/in-flight/` for as long as it
 * runs. `gc` keeps every object that entered the cache after the oldest live writer started, so
 * a collection during `exp run` or `exp queue start` never deletes what the run is writing. A
 * marker whose process is gone (killed with SIGKILL) protects nothing and is removed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Repo } from '../repo.ts';
import { isProcessAlive } from '../process.ts';

export interface InFlightWriter {
  pid: number;
  hostname: string;
  /** What is writing (`exp run lr-02`). */
  what: string;
  /** Start time, ms since the epoch. */
  started: number;
}

function dir(repo: Repo): string {
  return path.join(repo.stateDir, 'in-flight');
}

/** Registers this process as a writer; call the returned function when it is done. */
export function registerWriter(repo: Repo, what: string): () => void {
  fs.mkdirSync(dir(repo), { recursive: true });
  const file = path.join(dir(repo), `${process.pid}-${randomBytes(4).toString('hex')}.json`);
  const info: InFlightWriter = { pid: process.pid, hostname: os.hostname(), what, started: Date.now() };
  fs.writeFileSync(file, JSON.stringify(info) + '\n', { flag: 'wx' });
  return () => fs.rmSync(file, { force: true });
}

/**
 * The live writers, oldest first. Markers of dead processes on this host are removed; a marker
 * that cannot be read (being written) counts as a writer that started now.
 */
export function liveWriters(repo: Repo): InFlightWriter[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir(repo)).filter((n) => n.endsWith('.json'));
  } catch {
    return [];
  }
  const live: InFlightWriter[] = [];
  for (const name of names) {
    const file = path.join(dir(repo), name);
    let info: InFlightWriter;
    try {
      info = JSON.parse(fs.readFileSync(file, 'utf8')) as InFlightWriter;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      live.push({ pid: -1, hostname: os.hostname(), what: name, started: Date.now() });
      continue;
    }
    if (info.hostname === os.hostname() && !isProcessAlive(info.pid)) {
      fs.rmSync(file, { force: true });
      continue;
    }
    live.push(info);
  }
  return live.sort((a, b) => a.started - b.started);
}
