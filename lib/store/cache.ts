/**
 * The local content-addressed cache `.lockstep/cache/sha256/ab/cdef...`. Objects enter through a
 * temp file in `.lockstep/cache/tmp/` that is fsynced, made read-only (0444) and renamed into
 * place, so an object path only ever holds complete bytes. Every read is verified against the
 * name: a corrupt object is moved to `.lockstep/quarantine/` and fetched again from the remote
 * when one is configured.
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { Oid } from '../types.ts';
import type { Output } from '../output.ts';
import { IntegrityError, formatProblem } from '../errors.ts';
import { objectKey, type Remote, type TransferOptions } from './remote.ts';
import { takeWriteFault } from './fault.ts';
import { sha256Hex } from './manifest.ts';

export interface CacheOptions {
  /** Where corrupt or missing objects are fetched from. */
  remote?: Remote;
  /** Warnings (quarantined objects); default: none. */
  out?: Output;
  /**
   * false: objects are renamed into place without an fsync or sync first. Only for a cache on a
   * disk thrown away after one run (a Vertex AI job's scratch workspace), where a lost write can
   * only come with losing the disk itself; the user's caches are always durable.
   */
  durable?: boolean;
}

/** sha256 of a file, streamed (does not block the event loop on large files). */
export async function hashFileAsync(file: string): Promise<{ oid: Oid; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { oid: hash.digest('hex'), size };
}

/**
 * Downloads `oid` from `remote` to `dest` (overwritten) and checks its sha256; a mismatch, or a
 * failed download, removes `dest`. A mismatch throws IntegrityError naming the remote object.
 */
export async function downloadVerified(
  remote: Remote,
  oid: Oid,
  dest: string,
  options: TransferOptions = {},
): Promise<{ size: number }> {
  try {
    const got = await remote.get(oid, dest, options);
    const { oid: actual, size } = got ? { oid: got.sha256, size: got.size } : await hashFileAsync(dest);
    if (actual !== oid) {
      throw new IntegrityError(
        formatProblem(
          `${remote.url}/${objectKey(oid)}`,
          'remote object does not match its sha256',
          actual,
          'The remote copy is corrupt: delete it there and push again from a good cache.',
        ),
      );
    }
    return { size };
  } catch (err) {
    await fs.promises.rm(dest, { force: true });
    throw err;
  }
}

function enospc(): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error('no space left on device (injected by LOCKSTEP_FAULT)');
  err.code = 'ENOSPC';
  return err;
}

/** What `.lockstep/.gitignore` must hide: everything local, never the committed config. */
const STATE_GITIGNORE = '/cache/\n/state/\n/quarantine/\n/config.local.yaml\n';

/** Writes `.lockstep/.gitignore` so the cache and local state never get committed. */
export function ensureStateIgnored(repo: Repo): void {
  const file = path.join(repo.stateDir, '.gitignore');
  if (fs.existsSync(file)) return;
  fs.mkdirSync(repo.stateDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, STATE_GITIGNORE);
  fs.renameSync(tmp, file);
}

/** fsyncs one file through the thread pool (the calling thread keeps working meanwhile). */
export async function fsyncFile(file: string): Promise<void> {
  const handle = await fs.promises.open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** At most this many fsyncs or renames in flight at once (the thread pool has four threads). */
const IO_CONCURRENCY = 8;

/** Runs `fn` over `items` with at most IO_CONCURRENCY calls in flight; rejects on the first failure. */
async function eachLimited<T>(items: T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(IO_CONCURRENCY, items.length) }, lane));
}

/**
 * Makes `files` durable: one fsync each (in parallel) for a few, else a single `sync -f`
 * (syncfs(2) of the file system holding them, one journal commit instead of thousands), falling
 * back to fsync each when that command is unavailable.
 */
export async function syncFiles(files: string[]): Promise<void> {
  if (files.length > 8) {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn('sync', ['-f', files[0]!], { stdio: 'ignore' });
      child.on('error', () => resolve(null));
      child.on('exit', (c) => resolve(c));
    });
    if (code === 0) return;
  }
  await eachLimited(files, fsyncFile);
}

export class Cache {
  readonly repo: Repo;
  readonly root: string;
  readonly remote: Remote | undefined;
  private readonly out: Output | undefined;
  private readonly madeDirs = new Set<string>();
  /** Objects this instance created (not ones that already existed): lets a failed `add` roll back. */
  readonly inserted: Oid[] = [];
  /** Whether objects are made durable before they are named (CacheOptions.durable). */
  readonly durable: boolean;

  constructor(repo: Repo, options: CacheOptions = {}) {
    this.repo = repo;
    this.root = repo.cacheDir;
    this.remote = options.remote;
    this.out = options.out;
    this.durable = options.durable ?? true;
  }

  /** `<cache>/sha256`: where objects live (for workers that check existence themselves). */
  get objectsDir(): string {
    return path.join(this.root, 'sha256');
  }

  objectPath(oid: Oid): string {
    return path.join(this.root, objectKey(oid));
  }

  async has(oid: Oid): Promise<boolean> {
    try {
      await fs.promises.access(this.objectPath(oid));
      return true;
    } catch {
      return false;
    }
  }

  /** Synchronous `has`, for hot loops over thousands of objects. */
  hasSync(oid: Oid): boolean {
    return fs.existsSync(this.objectPath(oid));
  }

  /** A fresh temp path inside the cache (same filesystem as the objects). */
  tempPath(): string {
    const dir = path.join(this.root, 'tmp');
    if (!this.madeDirs.has(dir)) ensureStateIgnored(this.repo);
    this.ensureDir(dir);
    return path.join(dir, `${process.pid}-${randomBytes(8).toString('hex')}`);
  }

  private ensureDir(dir: string): void {
    if (this.madeDirs.has(dir)) return;
    fs.mkdirSync(dir, { recursive: true });
    this.madeDirs.add(dir);
  }

  /**
   * Moves a complete, fsynced, read-only temp file holding `oid` into place. Returns false (and
   * removes the temp) when the object already existed.
   */
  adoptTemp(tmp: string, oid: Oid): boolean {
    const dest = this.objectPath(oid);
    if (fs.existsSync(dest)) {
      fs.rmSync(tmp, { force: true });
      return false;
    }
    this.ensureDir(path.dirname(dest));
    fs.renameSync(tmp, dest);
    this.inserted.push(oid);
    return true;
  }

  /**
   * Adopts many temp files at once: temps whose object already exists are dropped, the rest not
   * yet `synced` are made durable together (one file system sync instead of one fsync per object,
   * which dominates when thousands of small files are added), and only then is any renamed into
   * place, so an object name never points at bytes a crash could still lose. The renames run a
   * few at a time on the thread pool.
   */
  async adoptTemps(items: Array<{ tmp: string; oid: Oid; synced?: boolean }>): Promise<void> {
    const fresh: Array<{ tmp: string; oid: Oid; synced?: boolean }> = [];
    const claimed = new Set<Oid>();
    for (const item of items) {
      if (claimed.has(item.oid) || fs.existsSync(this.objectPath(item.oid))) {
        fs.rmSync(item.tmp, { force: true });
      } else {
        claimed.add(item.oid);
        fresh.push(item);
      }
    }
    if (fresh.length === 0) return;
    if (this.durable) await syncFiles(fresh.filter((f) => !f.synced).map((f) => f.tmp));
    for (const { oid } of fresh) this.ensureDir(path.dirname(this.objectPath(oid)));
    await eachLimited(fresh, async ({ tmp, oid }) => {
      await fs.promises.rename(tmp, this.objectPath(oid));
      this.inserted.push(oid);
    });
  }

  /** Hashes and inserts a file (copy; `move: true` renames it in). Returns its oid and size. */
  async insertFile(src: string, options: { move?: boolean } = {}): Promise<{ oid: Oid; size: number }> {
    // Loaded here: the hashing pool and its progress bar are for writes, not for reading objects.
    const { hashFiles, HashTaskError } = await import('./hasher.ts');
    if (options.move) {
      const [r] = await hashFiles([{ path: src }]);
      if (await this.has(r!.oid)) {
        await fs.promises.rm(src, { force: true });
        return { oid: r!.oid, size: r!.size };
      }
      if (takeWriteFault()) throw enospc();
      if (this.durable) {
        const handle = await fs.promises.open(src, 'r');
        await handle.sync();
        await handle.close();
      }
      await fs.promises.chmod(src, 0o444);
      this.ensureDir(path.dirname(this.objectPath(r!.oid)));
      try {
        await fs.promises.rename(src, this.objectPath(r!.oid));
        this.inserted.push(r!.oid);
        return { oid: r!.oid, size: r!.size };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        const result = await this.insertFile(src);
        await fs.promises.rm(src, { force: true });
        return result;
      }
    }
    const tmp = this.tempPath();
    let r;
    try {
      [r] = await hashFiles([
        { path: src, dest: tmp, fsync: this.durable, mode: 0o444, fault: takeWriteFault() },
      ]);
    } catch (err) {
      if (err instanceof HashTaskError) {
        const e: NodeJS.ErrnoException = new Error(`${src}: ${err.message}`);
        e.code = err.code;
        throw e;
      }
      throw err;
    }
    this.adoptTemp(tmp, r!.oid);
    return { oid: r!.oid, size: r!.size };
  }

  async insertBytes(bytes: Uint8Array): Promise<Oid> {
    const oid = sha256Hex(bytes);
    if (await this.has(oid)) return oid;
    const tmp = this.tempPath();
    const handle = await fs.promises.open(tmp, 'wx', 0o444);
    try {
      if (takeWriteFault()) {
        await handle.write(bytes.subarray(0, Math.ceil(bytes.length / 2)));
        throw enospc();
      }
      await handle.writeFile(bytes);
      if (this.durable) await handle.sync();
    } catch (err) {
      await handle.close();
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    await handle.close();
    this.adoptTemp(tmp, oid);
    return oid;
  }

  /**
   * Verified read; a corrupt object is quarantined and re-fetched from the remote if any, else
   * IntegrityError. `options.path` names the artifact in errors; `options.manifest`, the cached
   * manifest of the directory the object is a file of, lets it come from that directory's pack.
   */
  async readBytes(oid: Oid, options: { path?: string; manifest?: Oid } = {}): Promise<Buffer> {
    for (let attempt = 0; ; attempt++) {
      let bytes: Buffer | undefined;
      try {
        bytes = await fs.promises.readFile(this.objectPath(oid));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      if (bytes && sha256Hex(bytes) === oid) return bytes;
      if (bytes) await this.quarantine(oid);
      if (!this.remote || attempt > 0) throw this.missingError(oid, options.path, bytes !== undefined);
      if (!(options.manifest && (await this.downloadPacked(this.remote, oid, options.manifest))))
        await this.download(this.remote, oid);
    }
  }

  /**
   * Fetches `oid` from the pack of directory `manifest` that holds it (packs.ts), when the
   * remote has one; false when it has none (the caller fetches it loose). The pack's other files
   * the cache lacks are kept too (verified as it is split): a reader of a directory's files one
   * at a time then fetches each pack once, not once per file.
   */
  private async downloadPacked(remote: Remote, oid: Oid, manifest: Oid): Promise<boolean> {
    const { cachedManifestEntries, fetchMembers, packGroups } = await import('./packs.ts');
    const entries = cachedManifestEntries(this, manifest);
    const groups = entries ? packGroups(entries).filter((g) => g.members.some((m) => m.oid === oid)) : [];
    if (groups.length === 0) return false;
    const present = await remote.has(groups.map((g) => g.id));
    const group = groups.find((g) => present.has(g.id));
    if (!group) return false;
    const members = await fetchMembers(remote, group, this.tempPath(), [oid]);
    const temps: Array<{ tmp: string; oid: Oid }> = [];
    try {
      for (const [member, data] of members) {
        if (member !== oid && this.hasSync(member)) continue;
        const tmp = this.tempPath();
        temps.push({ tmp, oid: member });
        fs.writeFileSync(tmp, data, { mode: 0o444, flag: 'wx' });
      }
      await this.adoptTemps(temps);
    } catch (err) {
      for (const t of temps) fs.rmSync(t.tmp, { force: true });
      throw err;
    }
    return true;
  }

  /** The error for an object that is missing (or was corrupt) with no remote to heal it. */
  missingError(oid: Oid, where: string | undefined, corrupt: boolean): IntegrityError {
    const problem = corrupt ? 'cache object is corrupt (quarantined)' : 'object is missing from the cache';
    return new IntegrityError(
      formatProblem(
        where ?? objectKey(oid),
        problem,
        oid,
        'Run lockstep pull (configure a remote first if none is set).',
      ),
    );
  }

  /** Moves a corrupt object to `.lockstep/quarantine/` and reports it. */
  async quarantine(oid: Oid): Promise<string> {
    const dir = path.join(this.repo.stateDir, 'quarantine');
    await fs.promises.mkdir(dir, { recursive: true });
    const dest = path.join(dir, `${oid}.${Date.now()}`);
    try {
      await fs.promises.rename(this.objectPath(oid), dest);
    } catch (err) {
      // Another process sharing the cache (its own push or gc) moved it first: it is gone here
      // all the same.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return dest;
      throw err;
    }
    this.out?.err(
      formatProblem(
        objectKey(oid),
        'corrupt cache object quarantined',
        dest,
        'It will be fetched again from the remote if one is configured.',
      ),
    );
    return dest;
  }

  /**
   * Downloads `oid` from `remote` to a temp file, verifies its sha256, fsyncs it and renames it
   * in. A mismatch removes the temp and throws IntegrityError naming the remote. Returns bytes.
   */
  async download(remote: Remote, oid: Oid, options: TransferOptions = {}): Promise<number> {
    const { tmp, size } = await this.downloadTemp(remote, oid, options);
    try {
      if (this.durable) await fsyncFile(tmp);
      this.adoptTemp(tmp, oid);
      return size;
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Downloads `oid` from `remote` to a read-only temp file in the cache and verifies its sha256,
   * but neither fsyncs nor renames it: `adoptTemps` makes many such temps durable with one sync
   * before any of them gets its object name (one fsync per object cost about 3 ms of system
   * time each here, most of pulling hundreds of small objects). A mismatch removes the temp and
   * throws IntegrityError naming the remote.
   */
  async downloadTemp(
    remote: Remote,
    oid: Oid,
    options: TransferOptions = {},
  ): Promise<{ tmp: string; size: number }> {
    const tmp = this.tempPath();
    const { size } = await downloadVerified(remote, oid, tmp, options);
    try {
      await fs.promises.chmod(tmp, 0o444);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    return { tmp, size };
  }

  /**
   * The bytes of `oid` when they hash to it (one read, for a caller that needs them: a push
   * sends them); else which way it failed: `missing`, or `corrupt` (then quarantined).
   */
  async readChecked(oid: Oid): Promise<Buffer | 'missing' | 'corrupt'> {
    let data: Buffer | undefined;
    try {
      // Read in one call on this thread: objects read this way are small (push reads those up
      // to 4 MiB), and a promise read is four trips through the thread pool (open, fstat, read,
      // close), a quarter of a small object's push CPU.
      data = fs.readFileSync(this.objectPath(oid));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'missing';
      // Something that is not a file where the object should be: no object, quarantined.
      if (code !== 'EISDIR') throw err;
      data = undefined;
    }
    if (data && createHash('sha256').update(data).digest('hex') === oid) return data;
    await this.quarantine(oid);
    return 'corrupt';
  }

  /** True when the object exists and matches its name (quarantines it when it does not). */
  async verify(oid: Oid): Promise<boolean> {
    return (await this.check(oid)) === 'ok';
  }

  /** `verify`, saying which way it failed: `missing`, or `corrupt` (then quarantined). */
  async check(oid: Oid): Promise<'ok' | 'missing' | 'corrupt'> {
    try {
      const { oid: actual } = await hashFileAsync(this.objectPath(oid));
      if (actual === oid) return 'ok';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return 'missing';
      if (code !== 'EISDIR') throw err;
    }
    await this.quarantine(oid);
    return 'corrupt';
  }
}
