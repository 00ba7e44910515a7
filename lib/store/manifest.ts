/**
 * Directory manifests: the canonical JSON object whose sha256 names a directory. Entries are
 * `{path, sha256, size}` (POSIX paths relative to the directory) sorted by path in code-unit
 * order, serialised with a fixed key order and no whitespace, so equal trees hash equally on
 * every machine. Entry paths are untrusted (manifests arrive from remotes and the run-cache):
 * the schema holds them to the rules of `entry-path.ts`, so a decoded manifest cannot name a
 * path that leaves its directory.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ManifestEntry, Oid } from '../types.ts';
import { IntegrityError, LockstepError, formatProblem } from '../errors.ts';
import { entryPathProblem, entryPathSchema, pathSetProblem, unsafePath } from '../entry-path.ts';

/** The one schema of a directory manifest, for reading and (through `encodeManifest`) writing. */
export const manifestSchema = z
  .object({
    entries: z
      .array(
        z
          .object({
            path: entryPathSchema,
            sha256: z.string().regex(/^[0-9a-f]{64}$/),
            size: z.number().int().nonnegative(),
          })
          .strict(),
      )
      .superRefine((entries, ctx) => {
        const clash = pathSetProblem(entries.map((e) => e.path));
        if (clash) {
          const value = entries[clash.index]!.path;
          ctx.addIssue({ code: 'custom', message: clash.problem, path: [clash.index, 'path'], input: value });
        }
      }),
  })
  .strict();

/** A parsed manifest: every entry path is a checked `EntryPath`. */
export type DecodedManifest = z.infer<typeof manifestSchema>;

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Canonical bytes of a manifest (entries sorted, fixed key order). The paths are held to the
 * rules the decoder applies, so lockstep never writes a manifest it would refuse to read; `where`
 * (the directory) names a refused file in the error.
 */
export function encodeManifest(entries: ManifestEntry[], where = '<manifest>'): Buffer {
  for (const e of entries) {
    const problem = entryPathProblem(e.path);
    if (problem) throw untrackable(where, e.path, problem);
  }
  const clash = pathSetProblem(entries.map((e) => e.path));
  if (clash) throw untrackable(where, entries[clash.index]!.path, clash.problem);
  const sorted = [...entries].sort((a, b) => compareCodeUnits(a.path, b.path));
  const body = sorted.map((e) => ({ path: e.path, sha256: e.sha256, size: e.size }));
  return Buffer.from(JSON.stringify({ entries: body }), 'utf8');
}

/** sha256 hex of `bytes`. */
export function sha256Hex(bytes: Uint8Array): Oid {
  return createHash('sha256').update(bytes).digest('hex');
}

function untrackable(where: string, rel: string, problem: string): LockstepError {
  return new LockstepError(
    formatProblem(
      `${where}/${rel}`,
      `file name cannot be tracked (${problem})`,
      rel,
      'Rename it so its path is portable, or move it out of the directory.',
    ),
  );
}

/**
 * Parses manifest object `oid` of the directory `where`. A malformed manifest, or one with an
 * entry path that fails the rules, is an IntegrityError naming the directory and the entry.
 */
export function decodeManifest(bytes: Uint8Array, oid: Oid, where: string = oid): DecodedManifest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues.find((i) => i.path.length === 3 && i.path[2] === 'path');
    const index = issue?.path[1] as number;
    const value = (parsed as { entries?: Array<{ path?: unknown }> } | undefined)?.entries?.[index]?.path;
    if (issue && typeof value === 'string') {
      // The per-path rules, or (for a clash between entries) the set rule's message.
      const problem = entryPathProblem(value) ?? issue.message;
      throw unsafePath(where, problem, value, `entry path in manifest ${oid.slice(0, 12)}`);
    }
    throw new IntegrityError(
      `${oid}: not a directory manifest "${oid.slice(0, 12)}". The lockfile points a directory at a file object; re-add the directory.`,
    );
  }
  return result.data;
}
