/**
 * Creating a Vertex AI CustomJob that runs a `lockstep job ...` command in the repository's
 * image: the worker pools (Vertex AI wants exactly one primary replica in pool 0; the other
 * replicas go to pool 1), the base output directory on the remote, the scheduling timeout, and
 * the create call retried on quota and transient errors.
 */
import type { Output } from '../output.ts';
import type { ResolvedStageCompute, VertexSettings } from './resolve.ts';
import { withRetry, type CustomJob, type JobServiceClient } from './jobs-client.ts';

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
  const [job] = await withRetry(
    () =>
      client.createCustomJob({
        parent: `projects/${v.project}/locations/${v.region}`,
        customJob: {
          displayName: o.displayName,
          labels: o.labels,
          jobSpec: {
            workerPoolSpecs,
            baseOutputDirectory: { outputUriPrefix: o.outputUriPrefix },
            ...(v.serviceAccount ? { serviceAccount: v.serviceAccount } : {}),
            scheduling: { timeout: { seconds: compute.timeoutSeconds } },
          },
        },
      }),
    {
      signal: o.signal,
      onRetry: (err, ms) =>
        o.out.err(
          `${o.label}: ${(err as Error).message.split('\n')[0]}; retrying in ${(ms / 1000).toFixed(1)} s`,
        ),
    },
  );
  o.out.err(
    `${o.label}: submitted ${job.name} (${compute.replicas} x ${compute.machineType}) ${consoleLink(job.name!, v)}`,
  );
  return job;
}
