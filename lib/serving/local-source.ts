/**
 * The server's view of a local endpoint: it polls `.lockstep/endpoints/<env>.json` (cheap stat;
 * re-read only when it changed), checks out and loads every deployed model by hash, and routes
 * requests by the traffic split. The canary controller changes the file; the server follows.
 */
import fs from 'node:fs';
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import type { Output } from '../output.ts';
import { endpointStatePath, readEndpointState } from './endpoint-state.ts';
import { materializeModel, ModelCache } from './model-store.ts';
import { WeightedRouter, type ModelSource, type Route, type ServedModel } from './router.ts';

export interface LocalSourceOptions {
  cache?: ModelCache;
  remote?: Remote;
  out?: Output;
}

export class LocalEndpointSource implements ModelSource {
  readonly file: string;
  private readonly repo: Repo;
  private readonly env: string;
  private readonly options: LocalSourceOptions;
  private readonly cache: ModelCache;
  private readonly router = new WeightedRouter();
  private seen = '';
  /** Canary deployed model id -> stable deployed model id, while a canary is in progress. */
  private shadows = new Map<string, string>();
  /** Stable deployed model id -> candidate deployed model id, during a shadow step. */
  private mirrors = new Map<string, string>();
  private refreshing: Promise<void> | undefined;
  /** Deployed model id -> why it could not be loaded. */
  readonly loadErrors = new Map<string, string>();

  constructor(repo: Repo, env: string, options: LocalSourceOptions = {}) {
    this.repo = repo;
    this.env = env;
    this.options = options;
    this.cache = options.cache ?? new ModelCache();
    this.file = endpointStatePath(repo.root, env);
  }

  pick(): Route | undefined {
    return this.router.pick();
  }

  models(): ServedModel[] {
    return this.router.list();
  }

  /** While a canary is in progress, the stable model shadows every request the canary answers. */
  shadowFor(route: Route): Route | undefined {
    const stable = this.shadows.get(route.deployedModelId);
    return stable === undefined ? undefined : this.router.list().find((m) => m.deployedModelId === stable);
  }

  /** During a shadow step, the candidate predicts every request the stable model answers. */
  mirrorFor(route: Route): Route | undefined {
    const candidate = this.mirrors.get(route.deployedModelId);
    return candidate === undefined
      ? undefined
      : this.router.list().find((m) => m.deployedModelId === candidate);
  }

  /** Re-reads the state file when its size or mtime changed; concurrent calls share one refresh. */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => (this.refreshing = undefined));
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    let key = 'missing';
    try {
      const st = fs.statSync(this.file);
      key = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      /* no state yet: nothing deployed */
    }
    if (key === this.seen) return;
    const state = readEndpointState(this.file, this.env);
    const routes: ServedModel[] = [];
    this.loadErrors.clear();
    for (const dm of state.deployedModels) {
      try {
        const dir = await materializeModel(this.repo, dm.model, {
          remote: this.options.remote,
          out: this.options.out,
        });
        const model = await this.cache.load(dm.model.hash, dir);
        const worker = this.cache.workerLoader;
        routes.push({
          deployedModelId: dm.id,
          modelVersionId: dm.model.hash,
          model,
          percent: state.trafficSplit[dm.id] ?? 0,
          ...(worker ? { modelDir: dir, ...(worker.ref ? { loaderRef: worker.ref } : {}) } : {}),
        });
      } catch (err) {
        this.loadErrors.set(dm.id, (err as Error).message);
        this.options.out?.err(
          `endpoint ${this.env}: deployed model ${dm.id} failed to load: ${(err as Error).message}`,
        );
      }
    }
    this.cache.retain(new Set(state.deployedModels.map((d) => d.model.hash)));
    this.router.set(routes);
    const c = state.canary;
    const inCanary = c?.phase === 'progressing' && c.candidate && c.stable && c.candidate !== c.stable;
    this.shadows = inCanary && !c.shadow ? new Map([[c.candidate!, c.stable!]]) : new Map();
    this.mirrors = inCanary && c.shadow ? new Map([[c.stable!, c.candidate!]]) : new Map();
    this.seen = key;
  }
}
