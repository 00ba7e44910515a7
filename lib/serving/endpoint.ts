/**
 * One `Endpoint` interface for every serving backend: the local server (embedded default) and
 * Vertex AI. An endpoint holds several deployed models and a traffic split over them, in whole
 * percentages summing to 100 (or an empty split when nothing is deployed), keyed by deployed
 * model id — the same shape Vertex AI uses.
 */
import type { ArtifactRef } from '../types.ts';

/** Deployed model id -> percentage of traffic (integers, summing to 100). */
export type TrafficSplit = Record<string, number>;

/** A model pinned by content: the `out/model` directory artifact from a lockfile. */
export type ModelRef = ArtifactRef & {
  /** Commit whose lockfile pinned it (informational). */
  commit?: string;
};

export interface DeployedModel {
  /** Endpoint-scoped id (`"1"`, `"2"`, ... locally; Vertex's numeric deployed model id). */
  id: string;
  model: ModelRef;
  /** ISO time of deployment. */
  deployedAt: string;
  /** Vertex model version resource name, when the backend has one. */
  modelVersion?: string;
}

/** The canary controller's status, persisted with the endpoint so reconcile runs are stateless. */
export interface CanaryStatus {
  /** Model hash being rolled out. */
  candidateHash: string;
  /** Deployed model id of the candidate (once deployed). */
  candidate?: string;
  /** Deployed model id of the stable model (absent on a first deploy). */
  stable?: string;
  /** Index into the environment's canary steps of the current step. */
  stepIndex: number;
  /** `progressing`: a step is being observed; `completed`: candidate at 100%, stable undeployed;
   * `rolled-back`: analysis failed, candidate at 0%. */
  phase: 'progressing' | 'completed' | 'rolled-back';
  /** ISO time the current step started (observations are counted from here). */
  stepStartedAt: string;
  /** The last human reason. */
  message: string;
  /**
   * The current step is `shadow`: the candidate takes no traffic, the server mirrors every
   * request the stable model answers to it and logs its answer as a shadow prediction.
   */
  shadow?: boolean;
}

export interface EndpointDescription {
  kind: 'local' | 'vertex';
  /** Environment name (local) or endpoint resource name (Vertex). */
  name: string;
  deployedModels: DeployedModel[];
  trafficSplit: TrafficSplit;
  canary?: CanaryStatus;
}

/** One prediction instance, Vertex AI request shape. */
export type PredictInstance = { audio: string } | { features: number[] };

export interface PredictionResult {
  label: string;
  scores: Record<string, number>;
  /**
   * What the input checks found in this instance (warnings; with the environment's
   * `serving.on_error_anomaly: flag`, also errors). Absent when the clip passed clean.
   */
  anomalies?: InputAnomaly[];
}

/** One finding of the input checks about an instance (see lib/validation). */
export interface InputAnomaly {
  severity: 'error' | 'warning';
  kind: string;
  detail: string;
}

/** Vertex AI `PredictResponse` shape. */
export interface PredictResponse {
  predictions: PredictionResult[];
  deployedModelId: string;
  modelVersionId: string;
}

export interface Endpoint {
  readonly kind: 'local' | 'vertex';
  /**
   * Deploys `model` with `percent` of the traffic; the other deployed models keep the rest in
   * their current proportions. Deploying a model that is already deployed returns the existing
   * deployment unchanged (idempotent).
   */
  deploy(model: ModelRef, percent: number): Promise<DeployedModel>;
  /** Replaces the traffic split (every deployed model not listed gets 0). */
  setTraffic(split: TrafficSplit): Promise<void>;
  /** Undeploys a model; it must have 0% traffic. */
  undeploy(deployedModelId: string): Promise<void>;
  describe(): Promise<EndpointDescription>;
  predict(instances: PredictInstance[]): Promise<PredictResponse>;
  /** Persists (or clears) the canary status alongside the endpoint. */
  writeCanaryStatus(status: CanaryStatus | undefined): Promise<void>;
}

/**
 * Splits `percent` off for a new model and scales the others to share the rest, keeping whole
 * percentages that sum to 100 (largest remainders get the leftover points, ties by id).
 */
export function splitWithNew(current: TrafficSplit, newId: string, percent: number): TrafficSplit {
  const others = Object.entries(current).filter(([id]) => id !== newId);
  const total = others.reduce((s, [, v]) => s + v, 0);
  const rest = 100 - percent;
  if (others.length === 0) return { [newId]: 100 };
  const shares = others.map(([id, v]) => {
    const exact = total > 0 ? (v / total) * rest : rest / others.length;
    return { id, floor: Math.floor(exact), frac: exact - Math.floor(exact) };
  });
  let left = rest - shares.reduce((s, x) => s + x.floor, 0);
  const order = [...shares].sort((a, b) => b.frac - a.frac || (a.id < b.id ? -1 : 1));
  for (const s of order) {
    if (left <= 0) break;
    s.floor++;
    left--;
  }
  const split: TrafficSplit = { [newId]: percent };
  for (const s of shares) split[s.id] = s.floor;
  return split;
}

/** Checks a split: integers 0..100 summing to 100 over `ids` (or empty when `ids` is empty). */
export function checkSplit(split: TrafficSplit, ids: string[]): string | undefined {
  for (const [id, v] of Object.entries(split)) {
    if (!ids.includes(id)) return `unknown deployed model "${id}"`;
    if (!Number.isInteger(v) || v < 0 || v > 100)
      return `traffic for "${id}" is not a whole percentage 0..100 "${v}"`;
  }
  const sum = Object.values(split).reduce((s, v) => s + v, 0);
  if (ids.length > 0 && sum !== 100) return `traffic split sums to ${sum}, not 100`;
  return undefined;
}
