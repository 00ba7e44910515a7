/**
 * Atomic file writes: temp file, fsync, rename. A reader (or a process killed mid-write) sees the
 * old content or the new, never a half-written file. Files that git tracks (the lockfile, params,
 * .gitignore) take their temp file from `.lockstep/tmp/`, so a kill between write and rename
 * leaves no debris in the work tree; `sweepTempFiles` clears what dead writers left there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { isProcessAlive } from './process.ts';

/** Temp names carry the writer's pid, so a sweep can tell a live writer's file from debris. */
const TEMP_NAME = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/**
 * A unique temp name for `file`, in `dir` (default: next to `file`; the rename has to stay on one
 * filesystem).
 */
export function tempPathFor(file: string, dir = path.dirname(file)): string {
  return path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

export interface WriteAtomicOptions {
  /** File mode of a new file (default 0o644). */
  mode?: number;
  /** fsync before the rename (default true); `false` for caches that can be rebuilt. */
  sync?: boolean;
  /**
   * Directory for the temp file (default: the file's own). When it turns out to be on another
   * filesystem the write falls back to the file's directory.
   */
  tmpDir?: string;
}

/** Writes `data` to `file` atomically, creating parent directories. */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: WriteAtomicOptions = {},
): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  if (options.tmpDir) {
    await fs.promises.mkdir(options.tmpDir, { recursive: true });
    try {
      await writeVia(tempPathFor(file, options.tmpDir), file, data, options);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    }
  }
  await writeVia(tempPathFor(file), file, data, options);
}

async function writeVia(
  tmp: string,
  file: string,
  data: string | Uint8Array,
  options: WriteAtomicOptions,
): Promise<void> {
  const handle = await fs.promises.open(tmp, 'wx', options.mode ?? 0o644);
  try {
    await handle.writeFile(data);
    if (options.sync ?? true) await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.promises.rename(tmp, file);
  } catch (err) {
    await fs.promises.rm(tmp, { force: true });
    throw err;
  }
}

/** `writeFileAtomic` for synchronous callers: the same temp name, fsync, rename and cleanup. */
export function writeFileAtomicSync(
  file: string,
  data: string | Uint8Array,
  options: Omit<WriteAtomicOptions, 'tmpDir'> = {},
): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempPathFor(file);
  const fd = fs.openSync(tmp, 'wx', options.mode ?? 0o644);
  try {
    fs.writeFileSync(fd, data);
    if (options.sync ?? true) fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Removes the temp files in `dir` whose writer process is gone (killed between write and rename).
 * Only names `pattern` matches (default: those made by `tempPathFor`), whose first group is the
 * writer's pid, are touched. Returns how many were removed.
 */
export function sweepTempFiles(dir: string, pattern: RegExp = TEMP_NAME): number {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m || isProcessAlive(Number(m[1]))) continue;
    // A directory too: what a checkout killed mid-swap had moved aside. One that cannot be
    // removed (a read-only directory inside it) is left rather than failing the command.
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    } catch {
      continue;
    }
    removed++;
  }
  return removed;
}

/** Cache temp names (`Cache.tempPath`, the cache.type probe): the writer's pid, then hex. */
const CACHE_TEMP_NAME = /^(\d+)-(?:probe-)?[0-9a-f]{16}$/;

/**
 * Removes the cache temp files in `dir` (`.lockstep/cache/tmp`) whose writer process is gone: an
 * add interrupted by Ctrl-C or a kill mid-copy leaves its partial copies there, as large as the
 * files being added, which otherwise only `lockstep gc` cleared and only an hour later. Returns
 * how many were removed.
 */
export function sweepCacheTemps(dir: string): number {
  return sweepTempFiles(dir, CACHE_TEMP_NAME);
}
