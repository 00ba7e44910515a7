/**
 * What a stage job runs and what it leaves behind, all on the remote under `jobs/<run key>/`:
 * `spec.json` (the stage, its code fingerprint, deps by hash, params, inputs), `result.json`
 * (outs by hash, the stage's verdict and facts) or `shards/<i>-of-<n>.json` (one shard's
 * directory by hash), `job.json` (the claim naming the CustomJob), `errors/<replica>.txt` and
 * `logs/<job id>/<replica>/<seq>.txt`. The run key is the run-cache key, so a job's outputs are
 * found by the same identity the run-cache uses, wherever they were computed.
 */
import { z } from 'zod';
import { artifactRefSchema } from '../lockfile.ts';

export const jobSpecSchema = z
  .object({
    stage: z.string(),
    key: z.string(),
    code: z.string(),
    deps: z.array(artifactRefSchema),
    /** The whole validated params object (the stage reads what it declares). */
    params: z.record(z.string(), z.unknown()),
    inputs: z.record(
      z.string(),
      z.object({ hash: z.string(), label: z.string(), rev: z.string().optional() }),
    ),
    /** Pipeline module, relative to the image's working directory (default stages/pipeline.ts). */
    pipeline: z.string().optional(),
    /** Shards the job's replicas split the stage into (1: the whole stage on one machine). */
    shards: z.number().int().min(1),
  })
  .strict();

export const jobResultSchema = z
  .object({
    outs: z.array(artifactRefSchema),
    summary: z.string().optional(),
    failed: z.boolean().optional(),
    facts: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  })
  .strict();

export type JobSpec = z.infer<typeof jobSpecSchema>;
export type JobResult = z.infer<typeof jobResultSchema>;

export const jobPaths = {
  spec: (key: string) => `jobs/${key}/spec.json`,
  result: (key: string) => `jobs/${key}/result.json`,
  shard: (key: string, index: number, count: number) => `jobs/${key}/shards/${index}-of-${count}.json`,
  claim: (key: string) => `jobs/${key}/job.json`,
  error: (key: string, replica: string) => `jobs/${key}/errors/${replica}.txt`,
  logs: (key: string, jobId: string) => `jobs/${key}/logs/${jobId}/`,
};

/** Scratch path (repository-relative) of shard `index` of a stage's outputs. */
export function shardDir(stage: string, index: number): string {
  return `out/.shards/${stage}/${index}`;
}
