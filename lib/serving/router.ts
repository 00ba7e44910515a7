/**
 * Traffic routing over deployed models: smooth weighted round-robin (the nginx algorithm), so a
 * 10/90 split sends exactly 1 request in 10 to the canary, evenly spread, with no randomness.
 */
import type { LoaderRef, ServingModel } from './model.ts';

/** Where one request goes. */
export interface Route {
  deployedModelId: string;
  /** The model artifact hash (Vertex's model version id). */
  modelVersionId: string;
  model: ServingModel;
  /** The model's directory, so the shadow worker can load it (absent: it is never mirrored to). */
  modelDir?: string;
  /** The loader the shadow worker loads `modelDir` with (absent: the default one). */
  loaderRef?: LoaderRef;
}

/** Deployed model as the server sees it. */
export interface ServedModel extends Route {
  percent: number;
}

/** What the server serves from: the local endpoint's state or one AIP_STORAGE_URI model. */
export interface ModelSource {
  /** The deployed model for the next request, or undefined when nothing takes traffic. */
  pick(): Route | undefined;
  /** Deployed models with their traffic share. */
  models(): ServedModel[];
  /**
   * The model that also answers a request routed to `route`, for comparison only (its answer is
   * logged beside the served one, never returned): the stable model while `route` is a canary.
   */
  shadowFor?(route: Route): Route | undefined;
  /**
   * The candidate of a shadow step, for a request the stable model `route` answers: it predicts
   * the same instances after the answer is sent, and its prediction is logged as a shadow one.
   */
  mirrorFor?(route: Route): Route | undefined;
  /** Re-reads the desired deployment if it changed (called on a timer by the server). */
  refresh?(): Promise<void>;
  close?(): Promise<void>;
}

export class WeightedRouter {
  private entries: { route: ServedModel; current: number }[] = [];

  /** Replaces the routes; entries with 0% never receive traffic. */
  set(routes: ServedModel[]): void {
    const prev = new Map(this.entries.map((e) => [e.route.deployedModelId, e.current]));
    this.entries = routes.map((route) => ({ route, current: prev.get(route.deployedModelId) ?? 0 }));
  }

  list(): ServedModel[] {
    return this.entries.map((e) => e.route);
  }

  pick(): Route | undefined {
    let total = 0;
    let best: { route: ServedModel; current: number } | undefined;
    for (const e of this.entries) {
      if (e.route.percent <= 0) continue;
      e.current += e.route.percent;
      total += e.route.percent;
      if (!best || e.current > best.current) best = e;
    }
    if (!best) return undefined;
    best.current -= total;
    return best.route;
  }
}

/** A source with fixed routes (one model, or a test's hand-made split). */
export function staticSource(routes: ServedModel[]): ModelSource {
  const router = new WeightedRouter();
  router.set(routes);
  return { pick: () => router.pick(), models: () => router.list() };
}
