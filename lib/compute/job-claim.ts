/**
 * One live job per run key: before submitting, look for a job of this key that is still running
 * (reattach to it), else take the claim `jobs/<key>/job.json` with an if-absent (or
 * if-generation) precondition, so of two repro processes on the same stage only one submits.
 * A claim whose job ended, or that names no job two minutes after it was written (its submitter
 * died before creating the job), is taken over at the generation read.
 */
import os from 'node:os';
import { StageError } from '../errors.ts';
import type { Output } from '../output.ts';
import type { NamedStore } from './named.ts';
import type { VertexSettings } from './resolve.ts';
import { jobPaths } from './spec.ts';
import { sleep } from './job-follow.ts';
import {
  jobState,
  TERMINAL_STATES,
  withRetry,
  type CustomJob,
  type JobServiceClient,
} from './jobs-client.ts';

/** How long a claim may name no job before another process takes it over. */
const CLAIM_STALE_MS = 120_000;

export interface ClaimOptions {
  client: JobServiceClient;
  named: NamedStore;
  vertex: VertexSettings;
  stage: string;
  key: string;
  out: Output;
  pollMs: number;
  /** True when the remote holds this key's outputs (a succeeded job's outputs may be gone since). */
  outputsOnRemote: () => Promise<boolean>;
  /** Creates the job (called only by the process holding the claim). */
  submit: () => Promise<CustomJob>;
}

/** The label that finds a key's jobs (label values hold at most 63 characters). */
export function keyLabel(key: string): string {
  return key.slice(0, 40);
}

async function liveJob(o: ClaimOptions): Promise<CustomJob | undefined> {
  const [jobs] = await withRetry(() =>
    o.client.listCustomJobs({
      parent: `projects/${o.vertex.project}/locations/${o.vertex.region}`,
      filter: `labels.lockstep-key="${keyLabel(o.key)}"`,
    }),
  );
  return jobs.find((j) => !TERMINAL_STATES.has(jobState(j)));
}

/** Reattaches to the key's live job or submits one under the claim; says which. */
export async function attachOrSubmit(o: ClaimOptions): Promise<{ job: CustomJob; submitted: boolean }> {
  const claimName = jobPaths.claim(o.key);
  const owner = `${os.hostname()}:${process.pid}`;
  const deadline = Date.now() + CLAIM_STALE_MS;
  while (Date.now() < deadline) {
    // The claim first: with no claim there is no job of this key to reattach to, so the common
    // case (a first run) costs one read instead of a list of jobs.
    const claim = await o.named.read(claimName);
    let take: string | undefined;
    if (!claim) take = '0';
    else {
      const live = await liveJob(o);
      if (live) {
        o.out.err(`${o.stage}: reattaching to running job ${live.name} (${jobState(live)})`);
        return { job: live, submitted: false };
      }
      const held = JSON.parse(claim.text) as { job?: string; at?: number };
      if (held.job) {
        const [j] = await withRetry(() => o.client.getCustomJob({ name: held.job! }));
        // It finished between our look at the remote and now: follow it (at once done). A job
        // that succeeded long ago but whose outputs left the remote since (gc, a deleted prefix)
        // is a stale claim like a failed one: following it would fail on every run.
        if (jobState(j) === 'JOB_STATE_SUCCEEDED' && (await o.outputsOnRemote()))
          return { job: j, submitted: false };
        if (TERMINAL_STATES.has(jobState(j))) take = claim.generation;
      } else if (Date.now() - (held.at ?? 0) > CLAIM_STALE_MS) take = claim.generation;
    }
    if (
      take !== undefined &&
      (await o.named.write(claimName, JSON.stringify({ owner, at: Date.now() }), { ifGeneration: take }))
    ) {
      const job = await o.submit();
      await o.named.write(claimName, JSON.stringify({ owner, at: Date.now(), job: job.name }));
      return { job, submitted: true };
    }
    await sleep(Math.min(o.pollMs, 1000));
  }
  throw new StageError(
    o.stage,
    `another process holds ${o.vertex.remote}/${claimName} and no job appeared. Delete the claim if its process is gone`,
  );
}
