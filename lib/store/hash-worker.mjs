/**
 * Hash-and-copy worker. Plain JS so worker_threads can load it without a TypeScript loader; the
 * main thread imports the same `hashOneAsync` for small jobs. One pass over the bytes: they are
 * hashed and, when `dest` is given, written to `dest` (created exclusively, mode applied, fsynced
 * when asked) so a cache insert never reads a file twice. A file whose size or mtime differs
 * between the fstat before and after reading is reported as changed, and a failed write leaves no
 * `dest` behind.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort } from 'node:worker_threads';

/** Files below this size are read in one call (and skipped early when their object exists). */
const CHUNK = 1 << 20;
/**
 * Larger files stream through in pieces this size: small enough that each piece is still in the
 * CPU cache when it is hashed and written back out. With 1 MiB pieces the copy spent three times
 * as much system time (1 GiB: 1.3-1.6 s against 0.4 s) and took twice as long.
 */
const STREAM_CHUNK = 256 << 10;
/**
 * While a large `dest` is written, each time this many more bytes are in the page cache they are
 * handed to the disk (`hashOneAsync`), so its write-back runs while the rest is read and hashed
 * rather than all of it after the copy: adding 1 GiB in 4 files otherwise ended with 0.1-0.2 s
 * of fsyncs of the last two (256 MiB each), with both cores idle.
 */
const FLUSH_BYTES = 32 << 20;
let buffer;
/**
 * Opens a source for reading without waiting: a FIFO put where a regular file was scanned would
 * otherwise block the open until some process writes to it (the add hung for good), whereas now
 * its fstat refuses it as ENOTFILE. O_NONBLOCK changes nothing for reading a regular file.
 */
const OPEN_SOURCE = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/**
 * Runs `fn`, a write to the copy in the cache, marking its failure as one of writing (`writing`
 * on the error), so an EIO or EDQUOT there is not reported as the source being unreadable.
 */
function writing(fn) {
  try {
    return fn();
  } catch (err) {
    throw markWriting(err);
  }
}

function markWriting(err) {
  if (err && typeof err === 'object') err.writing = true;
  return err;
}

function statKey(st) {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

/**
 * @param {{path: string, dest?: string, link?: 'reflink' | 'hardlink', fsync?: boolean, mode?: number, objects?: string, fault?: boolean}} task
 * @returns {{oid: string, size: number, key: string, destKey?: string, synced?: boolean}}
 */
export function hashOne(task) {
  const steps = copyAndHash(task);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * `hashOne`, with the written part of a large `dest` flushed to the disk as the copy goes on: an
 * fdatasync on the thread pool each FLUSH_BYTES, one at a time (skipped while the previous one
 * runs), on a descriptor of its own so the copy closing or removing `dest` never races it. The
 * result waits for the flush in flight, and a failed flush fails the task (removing `dest`):
 * the write error it saw would not be reported again to a later fsync on another descriptor.
 */
export async function hashOneAsync(task) {
  const steps = copyAndHash(task);
  let fd;
  let flushing;
  let flushError;
  let result;
  try {
    for (let step = steps.next(); ; step = steps.next()) {
      if (step.done) {
        result = step.value;
        break;
      }
      // Lets a finished flush's callback run first, so the next flush is not skipped for nothing.
      await new Promise((resolve) => setImmediate(resolve));
      // A failed flush already dooms the task: stop copying rather than write the rest of a
      // large file to a disk that reported an error (ENOSPC on a thin or network volume, EIO).
      if (flushError) throw flushError;
      if (flushing) continue;
      fd ??= writing(() => fs.openSync(task.dest, 'r'));
      flushing = new Promise((resolve) =>
        fs.fdatasync(fd, (err) => {
          flushError ??= err ? markWriting(err) : undefined;
          flushing = undefined;
          resolve();
        }),
      );
    }
  } catch (err) {
    // A failure outside the copy still unwinds it (its catch closes and removes `dest`).
    try {
      steps.throw(err);
    } catch {
      // The same error, rethrown below.
    }
    throw err;
  } finally {
    await flushing;
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (flushError) {
    fs.rmSync(task.dest, { force: true });
    throw flushError;
  }
  return result;
}

/**
 * The copy `hashOne` makes, yielding each time FLUSH_BYTES more were written to `dest`. The
 * shared `buffer` holds nothing across a yield (the next read refills it), so copies suspended
 * at once on one thread do not disturb each other.
 */
function* copyAndHash(task) {
  buffer ??= Buffer.allocUnsafe(CHUNK);
  if (task.dest && task.link) return linkOne(task);
  const fd = fs.openSync(task.path, OPEN_SOURCE);
  let out;
  try {
    const before = fs.fstatSync(fd, { bigint: true });
    if (!before.isFile()) {
      const err = new Error(`not a regular file`);
      err.code = 'ENOTFILE';
      throw err;
    }
    const hash = createHash('sha256');
    let size = 0;
    let first = -1;
    /** The whole file's sha256 when the small-file path already hashed it (not hashed again). */
    let wholeOid;
    if (task.dest && task.objects && before.size < BigInt(CHUNK)) {
      // Small file: read it whole, and skip creating `dest` when the object already exists
      // (creating files is the slow part of adding thousands of small ones).
      first = fs.readSync(fd, buffer, 0, CHUNK, null);
      if (BigInt(first) === before.size) {
        wholeOid = createHash('sha256').update(buffer.subarray(0, first)).digest('hex');
        const after = fs.fstatSync(fd, { bigint: true });
        if (after.size === before.size && after.mtimeNs === before.mtimeNs) {
          if (fs.existsSync(`${task.objects}/${wholeOid.slice(0, 2)}/${wholeOid.slice(2)}`)) {
            return { oid: wholeOid, size: first, key: statKey(before), existed: true };
          }
        }
      }
    }
    if (task.dest) out = writing(() => fs.openSync(task.dest, 'wx', task.mode ?? 0o644));
    let unflushed = 0;
    for (;;) {
      const n = first >= 0 ? first : fs.readSync(fd, buffer, 0, STREAM_CHUNK, null);
      first = -1;
      if (n === 0) break;
      const chunk = buffer.subarray(0, n);
      // With wholeOid set, any byte read past the first call means the file grew: ECHANGED below.
      if (wholeOid === undefined) hash.update(chunk);
      if (out !== undefined) {
        if (task.fault) {
          fs.writeSync(out, chunk, 0, Math.ceil(n / 2));
          const err = new Error('no space left on device (injected by LOCKSTEP_FAULT)');
          err.code = 'ENOSPC';
          throw err;
        }
        let off = 0;
        while (off < n) off += writing(() => fs.writeSync(out, chunk, off, n - off));
        unflushed += n;
        if (unflushed >= FLUSH_BYTES) {
          unflushed = 0;
          yield;
        }
      }
      size += n;
    }
    if (task.fault && out !== undefined && size === 0) {
      const err = new Error('no space left on device (injected by LOCKSTEP_FAULT)');
      err.code = 'ENOSPC';
      throw err;
    }
    const after = fs.fstatSync(fd, { bigint: true });
    if (after.size !== before.size || after.mtimeNs !== before.mtimeNs || BigInt(size) !== after.size) {
      const err = new Error('file changed while it was hashed');
      err.code = 'ECHANGED';
      throw err;
    }
    let destKey;
    let synced;
    if (out !== undefined) {
      synced = Boolean(task.fsync);
      if (synced) writing(() => fs.fsyncSync(out));
      destKey = statKey(fs.fstatSync(out, { bigint: true }));
      fs.closeSync(out);
      out = undefined;
    }
    return { oid: wholeOid ?? hash.digest('hex'), size, key: statKey(before), destKey, synced };
  } catch (err) {
    if (out !== undefined) {
      fs.closeSync(out);
      out = undefined;
      fs.rmSync(task.dest, { force: true });
    }
    throw err;
  } finally {
    if (out !== undefined) fs.closeSync(out);
    fs.closeSync(fd);
  }
}

function changed() {
  const err = new Error('file changed while it was hashed');
  err.code = 'ECHANGED';
  return err;
}

/** sha256 and byte count of an open file, read from its start. */
function hashFd(fd) {
  const hash = createHash('sha256');
  let size = 0;
  for (let pos = 0; ;) {
    const n = fs.readSync(fd, buffer, 0, STREAM_CHUNK, pos);
    if (n === 0) break;
    hash.update(buffer.subarray(0, n));
    size += n;
    pos += n;
  }
  return { oid: hash.digest('hex'), size };
}

/**
 * Why a link or clone of one file can fail where the probe next to the cache succeeded: the file
 * sits on another file system (a mount inside the workspace), or one that cannot link or clone.
 */
const LINK_REFUSED = new Set(['EXDEV', 'EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EINVAL', 'ENOSYS', 'EMLINK']);

/**
 * `dest` shares the source's bytes instead of holding a copy. `hardlink`: the source is hashed,
 * then linked to `dest` (the same inode, so the workspace file turns read-only too), and the link
 * must still be the inode that was hashed. `reflink`: the source is cloned to `dest` (a
 * copy-on-write copy, FICLONE) and `dest` is hashed, so its name always matches its own bytes.
 * Either way a source whose size or mtime moved while it was read is reported as changed.
 */
function linkOne(task) {
  const fd = fs.openSync(task.path, OPEN_SOURCE);
  let made = false;
  try {
    const before = fs.fstatSync(fd, { bigint: true });
    if (!before.isFile()) {
      const err = new Error(`not a regular file`);
      err.code = 'ENOTFILE';
      throw err;
    }
    let result;
    if (task.link === 'hardlink') {
      result = hashFd(fd);
      const mid = fs.fstatSync(fd, { bigint: true });
      if (mid.size !== before.size || mid.mtimeNs !== before.mtimeNs) throw changed();
      if (task.objects && fs.existsSync(`${task.objects}/${result.oid.slice(0, 2)}/${result.oid.slice(2)}`))
        return { ...result, key: statKey(before), existed: true };
      // link(2) does not follow a symlink: linking the listed path of one (a stage's
      // `out/latest -> model.bin`) would make `dest` a link to the symlink itself, dangling once
      // renamed into the cache when relative, or an object that is a symlink into the workspace
      // when absolute. Linking the file it resolves to would share (and make read-only) a file
      // the tracked path only points at, maybe outside the repository. Its bytes are copied.
      if (fs.lstatSync(task.path).isSymbolicLink()) return hashOne({ ...task, link: undefined });
      try {
        fs.linkSync(task.path, task.dest);
      } catch (err) {
        if (!task.fallbackCopy || !LINK_REFUSED.has(err.code)) throw err;
        return hashOne({ ...task, link: undefined });
      }
      made = true;
      fs.chmodSync(task.dest, task.mode ?? 0o444);
    } else {
      try {
        fs.copyFileSync(task.path, task.dest, fs.constants.COPYFILE_FICLONE_FORCE);
      } catch (err) {
        if (!task.fallbackCopy || !LINK_REFUSED.has(err.code)) throw err;
        fs.rmSync(task.dest, { force: true });
        return hashOne({ ...task, link: undefined });
      }
      made = true;
      fs.chmodSync(task.dest, task.mode ?? 0o444);
      const out = fs.openSync(task.dest, 'r');
      try {
        result = hashFd(out);
      } finally {
        fs.closeSync(out);
      }
    }
    const after = fs.fstatSync(fd, { bigint: true });
    const linked = fs.lstatSync(task.dest, { bigint: true });
    if (
      after.size !== before.size ||
      after.mtimeNs !== before.mtimeNs ||
      BigInt(result.size) !== after.size ||
      (task.link === 'hardlink' && linked.ino !== before.ino)
    )
      throw changed();
    if (task.fsync) {
      const out = fs.openSync(task.dest, 'r');
      try {
        writing(() => fs.fsyncSync(out));
      } finally {
        fs.closeSync(out);
      }
    }
    return { ...result, key: statKey(before), destKey: statKey(linked), synced: Boolean(task.fsync) };
  } catch (err) {
    if (made) fs.rmSync(task.dest, { force: true });
    throw err;
  } finally {
    fs.closeSync(fd);
  }
}

if (parentPort) {
  // Batches run one after another (a second one can arrive while the first awaits a flush).
  let turn = Promise.resolve();
  parentPort.on('message', (batch) => {
    turn = turn.then(async () => {
      const results = [];
      for (const task of batch) {
        try {
          results.push(await hashOneAsync(task));
        } catch (err) {
          results.push({
            error: { code: err.code ?? 'EUNKNOWN', message: err.message, writing: Boolean(err.writing) },
          });
        }
      }
      parentPort.postMessage(results);
    });
  });
}
