/**
 * Resumable-upload sessions that outlive the process, so a push killed half-way through a large
 * object continues from the service's offset instead of starting over. A session URI lets anyone
 * holding it finish that one upload, so the files are private to the user (directory 0700, files
 * 0600), never printed, and dropped once the upload finishes or the session is a few days old
 * (GCS keeps sessions for a week).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';

const MAX_AGE_MS = 5 * 24 * 3600 * 1000;

export interface SessionKey {
  bucket: string;
  name: string;
  size: number;
  crc32c: string;
}

/** Default home: a per-user directory under the system temp dir. */
export function defaultSessionDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 'user';
  return path.join(os.tmpdir(), `lockstep-gcs-sessions-${uid}`);
}

export class UploadSessions {
  constructor(readonly dir: string) {}

  private fileOf(key: SessionKey): string {
    const id = createHash('sha256')
      .update(`${key.bucket}\0${key.name}\0${key.size}\0${key.crc32c}`)
      .digest('hex');
    return path.join(this.dir, `${id}.json`);
  }

  /** The saved session URI for exactly these bytes at this name, if fresh. */
  async load(key: SessionKey): Promise<string | undefined> {
    try {
      const saved = JSON.parse(await fs.promises.readFile(this.fileOf(key), 'utf8')) as {
        uri?: unknown;
        created?: unknown;
      };
      if (typeof saved.uri !== 'string' || typeof saved.created !== 'number') return undefined;
      if (Date.now() - saved.created > MAX_AGE_MS) {
        await this.forget(key);
        return undefined;
      }
      return saved.uri;
    } catch {
      return undefined; // none, or unreadable: start a new session
    }
  }

  /**
   * True when the directory is a real directory of this user that nobody else can read: in a
   * shared temp dir another user could have planted it (or a symlink) to collect session URIs.
   */
  private async isPrivateDir(): Promise<boolean> {
    await fs.promises.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const stat = await fs.promises.lstat(this.dir);
    const mine = typeof process.getuid !== 'function' || stat.uid === process.getuid();
    return stat.isDirectory() && mine && (stat.mode & 0o077) === 0;
  }

  /** Saves `uri` atomically (temp file + rename), readable only by this user; skipped when the
   * directory is not private (the upload still works, it just cannot resume across runs). */
  async save(key: SessionKey, uri: string): Promise<void> {
    if (!(await this.isPrivateDir())) return;
    const file = this.fileOf(key);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await fs.promises.writeFile(tmp, JSON.stringify({ uri, created: Date.now() }), { mode: 0o600 });
    await fs.promises.rename(tmp, file);
  }

  async forget(key: SessionKey): Promise<void> {
    await fs.promises.rm(this.fileOf(key), { force: true });
  }
}
