/**
 * Run records: facts about the last execution of a stage that are not outputs (when it ran, how
 * long, on which host and Node, and whatever the stage reported, e.g. train's wall time). They
 * live in `.lockstep/records/<stage>.json`, outside every out and outside the lockfile, so output
 * hashes stay a pure function of code, deps, params and declared inputs while the facts stay
 * visible (`repro --json`, `lockstep status --json`, the report).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { Repo } from '../repo.ts';
import type { Oid } from '../types.ts';
import { writeFileAtomic } from '../atomic.ts';

export const runRecordSchema = z
  .object({
    stage: z.string(),
    /** Run-cache key of the execution. */
    key: z.string(),
    started: z.string(),
    finished: z.string(),
    seconds: z.number(),
    host: z.string(),
    node: z.string(),
    facts: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])),
  })
  .strict();

export type RunRecord = z.infer<typeof runRecordSchema>;

function recordPath(repo: Repo, stage: string): string {
  return path.join(repo.stateDir, 'records', `${stage}.json`);
}

/** Records the execution of `stage` that just finished. */
export async function writeRunRecord(
  repo: Repo,
  stage: string,
  run: { key: Oid; started: Date; finished: Date; facts: RunRecord['facts'] },
): Promise<RunRecord> {
  const record: RunRecord = {
    stage,
    key: run.key,
    started: run.started.toISOString(),
    finished: run.finished.toISOString(),
    seconds: Number(((run.finished.getTime() - run.started.getTime()) / 1000).toFixed(3)),
    host: os.hostname(),
    node: process.version,
    facts: run.facts,
  };
  await writeFileAtomic(recordPath(repo, stage), JSON.stringify(record, null, 2) + '\n');
  return record;
}

/** The record of the last execution of `stage` in this clone, or undefined. */
export function readRunRecord(repo: Repo, stage: string): RunRecord | undefined {
  try {
    const parsed = runRecordSchema.safeParse(JSON.parse(fs.readFileSync(recordPath(repo, stage), 'utf8')));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
