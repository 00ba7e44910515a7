/**
 * Publishing the report's PNGs without making them public: each file goes into the GCS remote
 * under its content address (`<prefix>/sha256/..`, uploaded only when missing) and the report
 * links to a time-limited V4 signed URL. Remotes that cannot sign (a local directory) publish
 * nothing: the PNGs stay in the workflow artifact.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Remote } from '../store/remote.ts';

/** A remote that can hand out signed read URLs (GcsRemote). */
export interface SigningRemote extends Remote {
  signedReadUrl(oid: string, expiresInSeconds: number, contentType?: string): Promise<string>;
}

export function isSigningRemote(remote: Remote | undefined): remote is SigningRemote {
  return typeof (remote as Partial<SigningRemote> | undefined)?.signedReadUrl === 'function';
}

const TYPES: Record<string, string> = { '.png': 'image/png', '.svg': 'image/svg+xml' };

/**
 * Uploads `files` (absolute paths) by content hash and returns a signed link per file, named by
 * its file name. Default lifetime 7 days, the longest a V4 signature allows.
 */
export async function publishPlots(
  remote: SigningRemote,
  files: string[],
  options: { expiresInSeconds?: number } = {},
): Promise<{ name: string; url: string }[]> {
  const hashed = await Promise.all(
    files.map(async (file) => ({
      file,
      oid: createHash('sha256')
        .update(await readFile(file))
        .digest('hex'),
    })),
  );
  const present = await remote.has(hashed.map((h) => h.oid));
  const links: { name: string; url: string }[] = [];
  for (const { file, oid } of hashed) {
    if (!present.has(oid)) await remote.put(oid, file);
    const type = TYPES[path.extname(file).toLowerCase()];
    links.push({
      name: path.basename(file),
      url: await remote.signedReadUrl(oid, options.expiresInSeconds ?? 7 * 24 * 3600, type),
    });
  }
  return links;
}
