/**
 * Models by hash: a model pinned by the lockfile (the `out/model` directory artifact) is checked
 * out of the content-addressed store into `.lockstep/models/<hash>/` (pulling from the remote
 * when the cache lacks objects) and loaded once per process.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import type { Output } from '../output.ts';
import type { ModelRef } from './endpoint.ts';
import type { LoaderRef, ModelLoader, ServingModel } from './model.ts';
import { loadWithInputChecks } from './checks.ts';

/** `.lockstep/models/<hash>` */
export function modelDir(repo: Repo, hash: string): string {
  return path.join(repo.stateDir, 'models', hash);
}

/**
 * Ensures `.lockstep/models/<hash>/` holds the model and returns its path. The checkout builds
 * in a temp sibling and renames it in, so an existing directory is always complete.
 */
export async function materializeModel(
  repo: Repo,
  ref: ModelRef,
  options: { remote?: Remote; out?: Output } = {},
): Promise<string> {
  const dir = modelDir(repo, ref.hash);
  if (fs.existsSync(dir)) return dir;
  const modelsRoot = path.dirname(dir);
  const madeRoot = !fs.existsSync(modelsRoot);
  fs.mkdirSync(modelsRoot, { recursive: true });
  const { checkoutArtifact } = await import('../store/checkout.ts');
  // Check out relative to `.lockstep/models` (tracked paths may not live under .lockstep), with
  // the repository's cache and hash state.
  const modelsRepo: Repo = { ...repo, root: modelsRoot };
  try {
    await checkoutArtifact(
      modelsRepo,
      { path: ref.hash, hash: ref.hash, size: ref.size, nfiles: ref.nfiles, dir: ref.dir ?? true },
      { remote: options.remote, out: options.out },
    );
  } catch (err) {
    // A refused model (say, an unsafe manifest) leaves no trace, not even the empty folder.
    if (madeRoot) await fs.promises.rmdir(modelsRoot).catch(() => undefined);
    throw err;
  }
  return dir;
}

/** Loads each model directory once; concurrent requests for one hash share the load. */
export class ModelCache {
  private readonly loaded = new Map<string, Promise<ServingModel>>();
  private readonly loader: ModelLoader;
  /**
   * How a worker thread loads these models: `{}` for the default loader, `{ ref }` for a loader
   * that names its module, undefined for one that cannot be loaded outside this thread.
   */
  readonly workerLoader: { ref?: LoaderRef } | undefined;

  /** `loader` defaults to `loadServingModel`, imported on first use (it loads TensorFlow.js). */
  constructor(loader?: ModelLoader) {
    this.loader = loader ?? (async (dir) => (await import('./model.ts')).loadServingModel(dir));
    this.workerLoader = !loader ? {} : loader.ref ? { ref: loader.ref } : undefined;
  }

  load(hash: string, dir: string): Promise<ServingModel> {
    let p = this.loaded.get(hash);
    if (!p) {
      p = loadWithInputChecks(this.loader, dir);
      this.loaded.set(hash, p);
      // A failed load is not cached: the next refresh retries.
      p.catch(() => this.loaded.delete(hash));
    }
    return p;
  }

  /** Forgets models not in `keep`. */
  retain(keep: Set<string>): void {
    for (const hash of this.loaded.keys()) if (!keep.has(hash)) this.loaded.delete(hash);
  }
}
