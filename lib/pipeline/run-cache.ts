/**
 * The run-cache: `.lockstep/runs/<key>.json` records the outs (and metrics) of a stage execution
 * keyed by its inputs (`runKey`), so any earlier identical run is restored instead of re-run,
 * whichever branch it happened on. Entries are tiny and written atomically after the outs are in
 * the cache, so an entry never points at objects that were not stored.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, Oid } from '../types.ts';
import { artifactRefSchema } from '../lockfile.ts';
import { writeFileAtomic } from '../atomic.ts';

export const runEntrySchema = z
  .object({
    stage: z.string(),
    outs: z.array(artifactRefSchema),
    metrics: z.record(z.string(), z.number()).optional(),
    /** What the stage returned: a gate's verdict survives a later skip or restore. */
    result: z.object({ failed: z.boolean().optional(), summary: z.string().optional() }).strict().optional(),
    /** When the run finished (ISO 8601). */
    created: z.string(),
  })
  .strict();

export type RunEntry = z.infer<typeof runEntrySchema>;

/** Path of the run-cache entry for `key`. */
export function runEntryPath(repo: Repo, key: Oid): string {
  return path.join(repo.stateDir, 'runs', `${key}.json`);
}

/** The entry for `key`, or undefined when absent or unreadable (a bad entry is just a miss). */
export function readRunEntry(repo: Repo, key: Oid): RunEntry | undefined {
  try {
    const parsed = runEntrySchema.safeParse(JSON.parse(fs.readFileSync(runEntryPath(repo, key), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Records a finished run. */
export async function writeRunEntry(
  repo: Repo,
  key: Oid,
  stage: string,
  outs: ArtifactRef[],
  metrics: Record<string, number> | undefined,
  result?: { failed?: boolean; summary?: string },
): Promise<void> {
  const entry: RunEntry = {
    stage,
    outs,
    ...(metrics ? { metrics } : {}),
    ...(result && (result.failed || result.summary) ? { result } : {}),
    created: new Date().toISOString(),
  };
  await writeFileAtomic(runEntryPath(repo, key), JSON.stringify(entry, null, 2) + '\n');
}
