/**
 * Named objects next to a remote's content-addressed objects: `jobs/<run key>/spec.json`, a
 * job's result, its shard pointers, claims and log chunks. They live under the remote's own
 * prefix (`gs://bucket/prefix/jobs/...`, `<dir>/jobs/...`) so a job, the repro that submitted it
 * and a job-matrix shard all find them from the remote URL alone. A write can be conditional on
 * the generation read before (0: only if absent), which is what keeps two repro processes from
 * submitting two jobs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseGsUrl, statusOf } from '../store/gcs-errors.ts';

export interface NamedObject {
  text: string;
  /** Opaque generation for a conditional write. */
  generation: string;
}

export interface NamedStore {
  readonly url: string;
  read(name: string): Promise<NamedObject | undefined>;
  /**
   * Writes `name`. With `ifGeneration` ('0': only if absent) the write happens only when the
   * object is still at that generation; returns false when it is not.
   */
  write(name: string, text: string, options?: { ifGeneration?: string }): Promise<boolean>;
  /** Names under `prefix` (which ends in '/'), sorted, relative to the store. */
  list(prefix: string): Promise<string[]>;
}

/** Opens the named-object store of the remote at `url` (gs://, file:// or a directory). */
export async function openNamedStore(url: string, baseDir = process.cwd()): Promise<NamedStore> {
  if (url.startsWith('gs://')) return gcsStore(url);
  const dir = url.startsWith('file://') ? fileURLToPath(url) : path.resolve(baseDir, url);
  return dirStore(dir, url);
}

function dirStore(dir: string, url: string): NamedStore {
  const at = (name: string) => path.join(dir, ...name.split('/'));
  const read = async (name: string): Promise<NamedObject | undefined> => {
    try {
      const [text, st] = await Promise.all([
        fs.promises.readFile(at(name), 'utf8'),
        fs.promises.stat(at(name), { bigint: true }),
      ]);
      return { text, generation: String(st.mtimeNs) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return {
    url,
    read,
    async write(name, text, options = {}) {
      const file = at(name);
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      if (options.ifGeneration === '0') {
        try {
          await fs.promises.writeFile(file, text, { flag: 'wx' });
          return true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
          throw err;
        }
      }
      if (options.ifGeneration !== undefined && (await read(name))?.generation !== options.ifGeneration)
        return false;
      const tmp = `${file}.tmp-${process.pid}`;
      await fs.promises.writeFile(tmp, text);
      await fs.promises.rename(tmp, file);
      return true;
    },
    async list(prefix) {
      const root = at(prefix);
      const out: string[] = [];
      const walk = async (abs: string, rel: string): Promise<void> => {
        let entries: fs.Dirent[];
        try {
          entries = await fs.promises.readdir(abs, { withFileTypes: true });
        } catch {
          return;
        }
        for (const e of entries) {
          if (e.isDirectory()) await walk(path.join(abs, e.name), `${rel}${e.name}/`);
          else if (!e.name.includes('.tmp-')) out.push(`${prefix}${rel}${e.name}`);
        }
      };
      await walk(root, '');
      return out.sort();
    },
  };
}

async function gcsStore(url: string): Promise<NamedStore> {
  const { Storage } = await import('@google-cloud/storage');
  const location = parseGsUrl(url);
  const root = location.prefix ? `${location.prefix}/` : '';
  const { createStorage, MediaClient } = await import('../store/gcs-client.ts');
  const { isTransient } = await import('../store/gcs-errors.ts');
  // createStorage itself gives a client on LOCKSTEP_GCS_ENDPOINT its placeholder project.
  const storage = createStorage(Storage);
  const bucket = storage.bucket(location.bucket);
  const media = new MediaClient(storage);
  const status = (err: unknown) => (err as { code?: number }).code;
  return {
    url,
    read: (name) => onReset(() => read(name)),
    async write(name, text, options = {}) {
      if (options.ifGeneration !== undefined) return conditionalWrite(name, text, options);
      // An unconditional write is repeated on 429 and 5xx too, as a read is: one 503 on a job's
      // spec failed the stage.
      return onReset(() => transient(() => write(name, text, options)));
    },
    list: (prefix) => onReset(() => list(prefix)),
  };

  /**
   * One media GET: the bytes and, in `x-goog-generation`, the generation they are of (a metadata
   * read and then a download took two requests, and could pair one generation's number with
   * the next one's text). 429 and 5xx answers are retried with backoff, as the client's own
   * calls were; a dropped connection is onReset's.
   */
  function read(name: string): Promise<NamedObject | undefined> {
    return transient(() => readOnce(name));
  }

  /**
   * A conditional write (a claim) repeated on 429 and 5xx. A 5xx may come after the service
   * stored the object, and the repeat would then answer 412 as if another process had won: so
   * before each repeat the object is read, and holding exactly this text (a claim names its
   * process and time) means the write took.
   */
  function conditionalWrite(
    name: string,
    text: string,
    options: { ifGeneration?: string },
  ): Promise<boolean> {
    let tried = false;
    return transient(async () => {
      if (tried && (await read(name))?.text === text) return true;
      tried = true;
      return write(name, text, options);
    });
  }

  /** `fn`, repeated with backoff (up to 6 times) while it fails with a 429 or 5xx answer. */
  async function transient<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= 6 || statusOf(err) === undefined || !isTransient(err)) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt * (0.5 + Math.random() / 2)));
      }
    }
  }

  async function readOnce(name: string): Promise<NamedObject | undefined> {
    const res = await media.open(location.bucket, root + name, { timeoutMs: 60_000 });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    if (res.statusCode === 404) return undefined;
    if (res.statusCode !== 200) {
      const message = text.slice(0, 300).replace(/\s+/g, ' ');
      throw Object.assign(new Error(`${url}/${name}: read answered ${res.statusCode}: ${message}`), {
        code: res.statusCode,
      });
    }
    const generation = res.headers['x-goog-generation'];
    // Without it a conditional write could not hold to the text read: refused, and the object's
    // text (a job spec, a result) is not put in the message.
    if (typeof generation !== 'string')
      throw new Error(
        `${url}/${name}: the read answered without an x-goog-generation header. Read through an endpoint (LOCKSTEP_GCS_ENDPOINT, STORAGE_EMULATOR_HOST) that passes it on.`,
      );
    return { text, generation };
  }

  async function write(name: string, text: string, options: { ifGeneration?: string }): Promise<boolean> {
    try {
      await bucket.file(root + name).save(text, {
        resumable: false,
        contentType: 'application/json',
        ...(options.ifGeneration !== undefined
          ? { preconditionOpts: { ifGenerationMatch: Number(options.ifGeneration) } }
          : {}),
      });
      return true;
    } catch (err) {
      if (status(err) === 412) return false;
      throw err;
    }
  }

  async function list(prefix: string): Promise<string[]> {
    const [files] = await bucket.getFiles({ prefix: root + prefix });
    return files.map((f) => f.name.slice(root.length)).sort();
  }
}

/**
 * Repeats `fn` (up to 3 times) when the connection it reused was closed under it: a keep-alive
 * connection the server closed while it sat idle between two polls answers the next request
 * with "socket hang up" (ECONNRESET) or EPIPE, and not every path of the storage client retries
 * that. Only for idempotent calls.
 */
async function onReset<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = err as { code?: unknown; message?: string };
      const reset =
        e.code === 'ECONNRESET' ||
        e.code === 'EPIPE' ||
        /socket hang up|ECONNRESET|EPIPE/.test(e.message ?? '');
      if (!reset || attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}
