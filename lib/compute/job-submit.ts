/**
 * Creating a Vertex AI CustomJob that runs a `lockstep job ...` command in the repository's
 * image: the worker pools (Vertex AI wants exactly one primary replica in pool 0; the other
 * replicas go to pool 1), the base output directory on the remote, the scheduling timeout, and
 * the create call retried on quota and transient errors without ever creating a second job:
 * each submission carries a label of its own (`lockstep-submission`), and after an error that may
 * have come after Vertex AI created the job (503, a deadline, a dropped connection) the job is
 * looked up by that label and adopted before another create is tried.
 */
import { randomBytes } from 'node:crypto';
import type { Output } from '../output.ts';
import type { ResolvedStageCompute, VertexSettings } from './resolve.ts';
import {
  apiErrorLine,
  isRetryable,
  mayHaveActed,
  withRetry,
  type CustomJob,
  type JobServiceClient,
} from './jobs-client.ts';

/** The label naming one submission: the job a create made, whatever the create answered. */
export const SUBMISSION_LABEL = 'lockstep-submission';

export interface SubmitJobOptions {
  /** What the job is for, at the head of its log lines (`featurize`, `tune: trial 3`). */
  label: string;
  displayName: string;
  labels: Record<string, string>;
  /** Arguments after `node bin/lockstep.mjs job` (e.g. `['run', '--remote', url, '--key', key]`). */
  args: string[];
  /** Where Vertex AI points AIP_MODEL_DIR and the rest (a gs:// prefix). */
  outputUriPrefix: string;
  compute: Pick<ResolvedStageCompute, 'machineType' | 'accelerator' | 'replicas' | 'timeoutSeconds'>;
  signal: AbortSignal;
  out: Output;
}

/** The console page of a job. */
export function consoleLink(job: string, v: VertexSettings): string {
  const id = job.split('/').pop();
  return `https://console.cloud.google.com/vertex-ai/locations/${v.region}/training/${id}/cpu?project=${v.project}`;
}

/** A label value Vertex AI accepts (lower case letters, digits, `-` and `_`, at most 63). */
export function labelValue(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '-')
    .slice(0, 63);
}

/** Creates the job; returns it as the API answered (state QUEUED). */
export async function submitCustomJob(
  client: JobServiceClient,
  v: VertexSettings,
  o: SubmitJobOptions,
): Promise<CustomJob> {
  const { compute } = o;
  const pool = (replicaCount: number) => ({
    machineSpec: {
      machineType: compute.machineType,
      ...(compute.accelerator
        ? {
            acceleratorType: compute.accelerator.type as never,
            acceleratorCount: compute.accelerator.count,
          }
        : {}),
    },
    replicaCount,
    diskSpec: { bootDiskType: 'pd-ssd', bootDiskSizeGb: 100 },
    containerSpec: {
      imageUri: v.image,
      command: ['node', 'bin/lockstep.mjs', 'job'],
      args: o.args,
      env: [{ name: 'LOCKSTEP_REMOTE', value: v.remote }],
    },
  });
  const workerPoolSpecs = [pool(1), ...(compute.replicas > 1 ? [pool(compute.replicas - 1)] : [])];
  const parent = `projects/${v.project}/locations/${v.region}`;
  // 96 random bits in lower-case hex: a valid label value, and no two submissions share it.
  const submission = randomBytes(12).toString('hex');
  // Set once a create failed in a way that may have created the job; from then on every
  // attempt looks for it first (a failed look-up is retried like the create).
  let mayExist = false;
  let adopted = false;
  const job = await withRetry(
    async () => {
      if (mayExist) {
        const [found] = await client.listCustomJobs({
          parent,
          filter: `labels.${SUBMISSION_LABEL}="${submission}"`,
        });
        if (found.length > 0) {
          adopted = true;
          return found[0]!;
        }
      }
      try {
        const [created] = await client.createCustomJob({
          parent,
          customJob: {
            displayName: o.displayName,
            labels: { ...o.labels, [SUBMISSION_LABEL]: submission },
            jobSpec: {
              workerPoolSpecs,
              baseOutputDirectory: { outputUriPrefix: o.outputUriPrefix },
              ...(v.serviceAccount ? { serviceAccount: v.serviceAccount } : {}),
              scheduling: { timeout: { seconds: compute.timeoutSeconds } },
            },
          },
        });
        return created;
      } catch (err) {
        if (mayHaveActed(err)) mayExist = true;
        throw err;
      }
    },
    {
      signal: o.signal,
      // A deadline or a dropped connection is retried too: the look-up makes it safe.
      retryable: (err) => isRetryable(err) || mayHaveActed(err),
      onRetry: (err, ms) =>
        o.out.err(
          `${o.label}: ${apiErrorLine(err)}; ` +
            (mayExist
              ? `the job may have been created: looking for label ${SUBMISSION_LABEL}=${submission} before creating it again in ${(ms / 1000).toFixed(1)} s`
              : `retrying in ${(ms / 1000).toFixed(1)} s`),
        ),
    },
  );
  o.out.err(
    `${o.label}: ${adopted ? 'adopted' : 'submitted'} ${job.name} (${compute.replicas} x ${compute.machineType})${adopted ? ', created by an attempt whose answer was lost' : ''} ${consoleLink(job.name!, v)}`,
  );
  return job;
}
