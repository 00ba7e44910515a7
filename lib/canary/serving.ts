/**
 * What serves in an environment, read without a network call: the local endpoint's state
 * (`.lockstep/endpoints/<env>.json`), the model with the largest traffic share. Undefined for a
 * Vertex AI endpoint (ask it with `lockstep endpoint describe`) or when nothing is deployed.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import { readPolicy } from '../environment/policy.ts';
import { endpointStatePath, readEndpointState } from '../serving/endpoint-state.ts';

export interface Serving {
  /** Model hash taking most traffic. */
  model: string;
  /** Its traffic share. */
  percent: number;
  /** Deployed model id. */
  deployedModelId: string;
}

/** The model serving most of `env`'s traffic on its local endpoint, if any. */
export async function servingModel(repo: Repo, env: string): Promise<Serving | undefined> {
  if (!existsSync(path.join(repo.root, 'promotion', `${env}.yaml`))) return undefined;
  const policy = await readPolicy(repo.root, env);
  if (policy.endpoint.kind !== 'local') return undefined;
  const state = readEndpointState(endpointStatePath(repo.root, env), env);
  let best: Serving | undefined;
  for (const d of state.deployedModels) {
    const percent = state.trafficSplit[d.id] ?? 0;
    if (percent > 0 && (!best || percent > best.percent))
      best = { model: d.model.hash, percent, deployedModelId: d.id };
  }
  return best;
}
