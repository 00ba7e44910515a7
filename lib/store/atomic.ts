/**
 * Atomic file writes: temp file in the same directory, fsync, rename. A reader (or a process
 * killed mid-write) sees the old content or the new, never a half-written file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

/** A unique temp name next to `file` (same directory, so the rename stays on one filesystem). */
export function tempPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Writes `data` to `file` atomically, creating parent directories. `sync: false` skips the fsync. */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: { mode?: number; sync?: boolean } = {},
): Promise<void> {
  await fs.promises.mkdir(path.dirname(file), { recursive: true });
  const tmp = tempPathFor(file);
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
