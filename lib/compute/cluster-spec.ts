/**
 * The replica a Vertex AI job process is: Vertex AI sets CLUSTER_SPEC on every replica, e.g.
 * `{"cluster":{"workerpool0":["cmle-training-workerpool0-ab-0:2222"],"workerpool1":[...]},
 * "environment":"cloud","task":{"type":"workerpool0","index":0}}`. Worker pool 0 holds the one
 * primary replica; pool 1 the other workers. Shard `i` of a job with N replicas is the primary for
 * i = 0 and `workerpool1` index i - 1 otherwise.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';

const clusterSpecSchema = z.object({
  cluster: z.record(z.string(), z.array(z.string())),
  task: z.object({ type: z.string().regex(/^workerpool[0-3]$/), index: z.number().int().min(0) }),
});

export interface Replica {
  /** `workerpool0-0`, `workerpool1-2`. */
  name: string;
  /** Shard index across pools 0 and 1. */
  index: number;
}

/** The replica named by `CLUSTER_SPEC`; without one (a plain container run), the primary. */
export function replicaFromClusterSpec(text: string | undefined): Replica {
  if (!text) return { name: 'workerpool0-0', index: 0 };
  let parsed;
  try {
    parsed = clusterSpecSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new ConfigError(
      `CLUSTER_SPEC: not a Vertex AI cluster spec (${(err as Error).message.split('\n')[0]}). Run the job on Vertex AI or unset it.`,
    );
  }
  const { type, index } = parsed.task;
  const primaries = parsed.cluster.workerpool0?.length ?? 0;
  const shard = type === 'workerpool0' ? index : type === 'workerpool1' ? primaries + index : -1;
  if (shard < 0)
    throw new ConfigError(
      `CLUSTER_SPEC: task type "${type}" computes no shard. Use worker pools 0 and 1 only.`,
    );
  return { name: `${type}-${index}`, index: shard };
}
