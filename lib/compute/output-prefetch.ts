/**
 * Pulling a job's outputs into the cache while its end is awaited. The replicas write
 * `result.json` (or every shard's pointer) last, once the objects it names are on the remote;
 * the job ends a poll or more later (the containers exit, the service marks the job SUCCEEDED).
 * So as soon as every pointer is there, the objects are fetched into the cache, which only takes
 * objects whose bytes match their names. The workspace is checked out only after the job
 * succeeded, by the same checkout as without a prefetch, which pulls whatever a prefetch did not
 * (one that failed or was interrupted changes nothing but the time).
 */
import { setMaxListeners } from 'node:events';
import type { Repo } from '../repo.ts';
import type { ArtifactRef } from '../types.ts';
import type { Remote } from '../store/remote.ts';
import { artifactObjects, dirsOf } from '../store/artifacts.ts';
import { Cache } from '../store/cache.ts';
import { pullObjects } from '../store/transfer.ts';

export class OutputPrefetch {
  private pulling?: Promise<void>;
  /** The pull's own signal, aborted with the follow's: its requests (a pool of downloads, each
   * listening for the abort, retries included) run beside the follow's own listeners, and a
   * signal with more than 10 listeners prints a leak warning to the user's terminal. */
  private readonly pullSignal: AbortSignal;
  private readonly pullController: AbortController;
  private stopped = false;

  /**
   * @param refs the outputs' refs once the job has written all of them, else undefined
   *   (called once per poll until then: one read of a pointer).
   */
  constructor(
    private readonly repo: Repo,
    private readonly remote: Remote,
    private readonly refs: () => Promise<ArtifactRef[] | undefined>,
    private readonly signal: AbortSignal,
  ) {
    const controller = new AbortController();
    setMaxListeners(100, controller.signal);
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    this.pullController = controller;
    this.pullSignal = controller.signal;
  }

  /** Looks for the pointers (until found) and starts the pull when they are all there. */
  async poll(): Promise<void> {
    if (this.pulling || this.stopped || this.signal.aborted) return;
    const refs = await this.refs().catch(() => undefined);
    if (refs && !this.pulling) this.pulling = this.pull(refs).catch(() => undefined);
  }

  /** True once every pointer was found (the job has written its outputs) and the pull started. */
  get started(): boolean {
    return this.pulling !== undefined;
  }

  /** Resolves when a started pull has finished (or failed). */
  async settled(): Promise<void> {
    await this.pulling;
  }

  /**
   * Stops a started pull (the job failed, was cancelled, or its follow threw) and resolves when
   * it has stopped: the failure is reported without waiting for outputs no one will check out,
   * and no download is left running (or half-written in the cache's temp files) after it.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pullController.abort(new Error('the job did not succeed'));
    await this.pulling;
  }

  private async pull(refs: ArtifactRef[]): Promise<void> {
    const cache = new Cache(this.repo, { remote: this.remote });
    // A directory's manifest comes first (it names the entries): artifactObjects fetches it.
    const oids = (await Promise.all(refs.map((r) => artifactObjects(this.repo, r, { cache })))).flat();
    await pullObjects(this.repo, this.remote, oids, { signal: this.pullSignal, manifests: dirsOf(refs) });
  }
}
