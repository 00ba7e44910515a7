/**
 * `.lockstep/endpoints/<env>.json`: the local endpoint's state (deployed models, traffic split,
 * canary status). One schema, used to parse and to write; writes are atomic (temp + rename) so
 * a server polling the file never reads half of it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { writeFileAtomic } from '../atomic.ts';
import { parseValue } from '../yaml-source.ts';

const modelRefSchema = z
  .object({
    path: z.string().min(1),
    hash: z.string().regex(/^[0-9a-f]{64}$/),
    size: z.number().int().nonnegative(),
    nfiles: z.number().int().nonnegative(),
    dir: z.boolean().optional(),
    commit: z.string().optional(),
  })
  .strict();

const deployedModelSchema = z
  .object({
    id: z.string().min(1),
    model: modelRefSchema,
    deployedAt: z.string(),
    modelVersion: z.string().optional(),
  })
  .strict();

export const canaryStatusSchema = z
  .object({
    candidateHash: z.string(),
    candidate: z.string().optional(),
    stable: z.string().optional(),
    stepIndex: z.number().int().min(0),
    phase: z.enum(['progressing', 'completed', 'rolled-back']),
    stepStartedAt: z.string(),
    message: z.string(),
    shadow: z.boolean().optional(),
  })
  .strict();

export const endpointStateSchema = z
  .object({
    version: z.literal(1),
    env: z.string(),
    /** Next deployed model id to hand out (ids are never reused). */
    nextId: z.number().int().min(1),
    deployedModels: z.array(deployedModelSchema),
    trafficSplit: z.record(z.string(), z.number().int().min(0).max(100)),
    canary: canaryStatusSchema.optional(),
    updatedAt: z.string(),
  })
  .strict();

export type EndpointState = z.infer<typeof endpointStateSchema>;

/** `.lockstep/endpoints/<env>.json` under a repository root. */
export function endpointStatePath(root: string, env: string): string {
  return path.join(root, '.lockstep', 'endpoints', `${env}.json`);
}

export function emptyEndpointState(env: string): EndpointState {
  return {
    version: 1,
    env,
    nextId: 1,
    deployedModels: [],
    trafficSplit: {},
    updatedAt: new Date(0).toISOString(),
  };
}

/** Reads the state; a missing file is an empty endpoint. */
export function readEndpointState(file: string, env: string): EndpointState {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyEndpointState(env);
    throw err;
  }
  const reset = 'delete the file to reset the local endpoint (it redeploys on the next reconcile)';
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `${file}: not JSON. Delete the file to reset the local endpoint (it redeploys on the next reconcile).`,
      { cause: err },
    );
  }
  // Every problem of a hand-edited file at once, each with its line.
  return parseValue(endpointStateSchema, raw, file, { text, suffix: `, or ${reset}` });
}

/** Writes the state atomically. */
export async function writeEndpointState(file: string, state: EndpointState): Promise<void> {
  const checked = endpointStateSchema.parse({ ...state, updatedAt: new Date().toISOString() });
  await writeFileAtomic(file, JSON.stringify(checked, null, 2) + '\n');
}
