/**
 * A remote that is a directory on this machine (a `file://` URL or a path): same layout as the
 * cache. Uploads land through a temp file + fsync + rename, so a reader never sees a partial object.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Oid } from '../types.ts';
import {
  isOid,
  objectKey,
  type PutOptions,
  type Remote,
  type RemoteObjectInfo,
  type TransferOptions,
} from './remote.ts';

export class LocalRemote implements Remote {
  readonly url: string;
  /** A put with `data` writes those bytes, whatever their size. */
  readonly putFromMemoryBelow = Infinity;
  readonly root: string;

  /** `root`: absolute directory of the remote (created on first put). */
  constructor(root: string) {
    this.root = path.resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  private objectPath(oid: Oid): string {
    return path.join(this.root, objectKey(oid));
  }

  async has(oids: Oid[], options: TransferOptions = {}): Promise<Set<Oid>> {
    const found = new Set<Oid>();
    for (const oid of oids) {
      options.signal?.throwIfAborted();
      if (fs.existsSync(this.objectPath(oid))) found.add(oid);
    }
    return found;
  }

  /**
   * Stores `srcPath` as `oid`; with `options.data` (the bytes the caller read and verified), those
   * bytes, so a file changed on disk after its check never reaches the remote.
   */
  async put(oid: Oid, srcPath: string, options: PutOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted();
    const dest = this.objectPath(oid);
    await fs.promises.mkdir(path.dirname(dest), { recursive: true });
    const tmpDir = path.join(this.root, 'tmp');
    await fs.promises.mkdir(tmpDir, { recursive: true });
    const tmp = path.join(tmpDir, `${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      if (options.data) await fs.promises.writeFile(tmp, options.data, { flag: 'wx' });
      else await fs.promises.copyFile(srcPath, tmp);
      const handle = await fs.promises.open(tmp, 'r');
      await handle.sync();
      await handle.close();
      await fs.promises.chmod(tmp, 0o444);
      // A hard link never replaces: EEXIST means another pusher stored the object first.
      try {
        await fs.promises.link(tmp, dest);
        return true;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') return false;
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV') throw err;
        // No hard links on this file system: a rename (same bytes either way).
        const existed = fs.existsSync(dest);
        await fs.promises.rename(tmp, dest);
        return !existed;
      }
    } finally {
      await fs.promises.rm(tmp, { force: true });
    }
  }

  async get(oid: Oid, destPath: string, options: TransferOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    await fs.promises.copyFile(this.objectPath(oid), destPath);
    await fs.promises.chmod(destPath, 0o644);
  }

  async *list(options: TransferOptions = {}): AsyncIterable<Oid> {
    for (const [dir, prefix] of [
      ['sha256', ''],
      ['packs', 'pack-'],
    ] as const) {
      const base = path.join(this.root, dir);
      let fans: string[];
      try {
        fans = (await fs.promises.readdir(base)).sort();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw err;
      }
      for (const fan of fans) {
        options.signal?.throwIfAborted();
        for (const rest of (await fs.promises.readdir(path.join(base, fan))).sort()) {
          const hex = fan + rest;
          if (isOid(hex)) yield prefix + hex;
        }
      }
    }
  }

  async *listDetailed(options: TransferOptions = {}): AsyncIterable<RemoteObjectInfo> {
    for await (const oid of this.list(options)) {
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(this.objectPath(oid));
      } catch {
        continue; // deleted meanwhile
      }
      yield { oid, size: st.size, updated: st.mtimeMs, version: String(st.mtimeMs) };
    }
  }

  async touch(oids: Oid[], options: TransferOptions & { olderThanMs: number }): Promise<number> {
    const cutoff = Date.now() - options.olderThanMs;
    let touched = 0;
    for (const oid of oids) {
      options.signal?.throwIfAborted();
      const file = this.objectPath(oid);
      try {
        if ((await fs.promises.stat(file)).mtimeMs >= cutoff) continue;
        const now = new Date();
        await fs.promises.utimes(file, now, now);
        touched++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return touched;
  }

  /**
   * A put writes `tmp/<pid>-<hex>` and links it into place; a push killed in between leaves the
   * temp (up to a pack's 4 MiB, or a large file whole), and nothing else ever removes it.
   */
  async sweepTemps(before: number, options: TransferOptions & { apply: boolean }): Promise<number> {
    const dir = path.join(this.root, 'tmp');
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
    let swept = 0;
    for (const name of names) {
      options.signal?.throwIfAborted();
      if (!/^\d+-[0-9a-f]{16}$/.test(name)) continue;
      const file = path.join(dir, name);
      const st = await fs.promises.lstat(file).catch(() => undefined);
      if (!st?.isFile() || st.mtimeMs >= before) continue;
      swept++;
      if (options.apply) await fs.promises.rm(file, { force: true });
    }
    return swept;
  }

  async deleteIfUnchanged(oid: Oid, version: string, options: TransferOptions = {}): Promise<boolean> {
    options.signal?.throwIfAborted();
    const file = this.objectPath(oid);
    try {
      if (String((await fs.promises.stat(file)).mtimeMs) !== version) return false;
      await fs.promises.rm(file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}
