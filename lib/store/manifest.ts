/**
 * Directory manifests: the canonical JSON object whose sha256 names a directory. Entries are
 * `{path, sha256, size}` (POSIX paths relative to the directory) sorted by path in code-unit
 * order, serialised with a fixed key order and no whitespace, so equal trees hash equally on
 * every machine.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Manifest, ManifestEntry, Oid } from '../types.ts';
import { IntegrityError } from '../errors.ts';

export const manifestSchema = z
  .object({
    entries: z.array(
      z
        .object({
          path: z.string().min(1),
          sha256: z.string().regex(/^[0-9a-f]{64}$/),
          size: z.number().int().nonnegative(),
        })
        .strict(),
    ),
  })
  .strict();

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Canonical bytes of a manifest (entries sorted, fixed key order). */
export function encodeManifest(entries: ManifestEntry[]): Buffer {
  const sorted = [...entries].sort((a, b) => compareCodeUnits(a.path, b.path));
  const body = sorted.map((e) => ({ path: e.path, sha256: e.sha256, size: e.size }));
  return Buffer.from(JSON.stringify({ entries: body }), 'utf8');
}

/** sha256 hex of `bytes`. */
export function sha256Hex(bytes: Uint8Array): Oid {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parses manifest object `oid`; a malformed one is an IntegrityError. */
export function decodeManifest(bytes: Uint8Array, oid: Oid): Manifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    throw new IntegrityError(
      `${oid}: not a directory manifest "${oid.slice(0, 12)}". The lockfile points a directory at a file object; re-add the directory.`,
    );
  }
  return result.data;
}
