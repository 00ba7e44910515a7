/**
 * Batch prediction: predict every audio file under an input (a folder or a `gs://` prefix) with
 * an environment's pinned model, write results as JSON lines and CSV (to a folder or a `gs://`
 * prefix; see io.ts for what "durable" means on each), and only then move (or remove) each
 * input. Idempotent: a re-run after a crash skips inputs whose results are already durable
 * (finishing their move), and a torn final line from a crash is dropped. Every file is checked
 * against the model's input schema (lib/validation, as validate and the server check it): files
 * with an error anomaly, and files that cannot be read, are listed with validate's reason in
 * `errors.jsonl` (and kept under `failed/`) and do not stop the batch; warnings are predicted
 * and carried on the result line.
 *
 * Features are computed by one pool of threads (both cores) kept for the whole batch, by the
 * same code as training and serving. The next chunk is fetched, hashed and featurized while the
 * current one is predicted and written.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { LoadedModel } from '../../lib/ml/model.ts';
import { normalizeFrames, normalizeSummary } from '../../lib/ml/transform.ts';
import type { Output } from '../../lib/output.ts';
import type { InputAnomaly } from '../../lib/serving/endpoint.ts';
import { describeRejection } from '../../lib/validation/anomaly.ts';
import { shouldPredict, unreadableAnomaly, type OnErrorAnomaly } from '../../lib/validation/clip.ts';
import { defaultInputChecks, type InputChecks } from '../../lib/validation/schema.ts';
import type { GsOptions } from '../../lib/store/gcs-objects.ts';
import { FeaturePool, type FileResult } from '../featurize/pool.ts';
import { openBatchIo } from './io.ts';
import type { BatchError, BatchResult } from './records.ts';

export {
  csvText,
  listInputs,
  parseJsonLines,
  readJsonLines,
  writeCsv,
  type BatchError,
  type BatchResult,
} from './records.ts';

export interface BatchOptions {
  /** Input: an absolute folder or a gs:// URL. */
  input: string;
  /**
   * Output: an absolute folder or a gs:// URL, receiving results.jsonl, results.csv,
   * errors.jsonl, processed/ and failed/.
   */
  output: string;
  model: LoadedModel;
  /** Model artifact hash recorded with each result. */
  modelHash: string;
  /**
   * What each file is checked against: the model directory's input schema (`readInputChecks`).
   * Default: the default validate limits, no format schema.
   */
  checks?: InputChecks;
  /** Files with an error anomaly: `reject` (default: errors.jsonl) or `flag` (predicted, flagged). */
  onErrorAnomaly?: OnErrorAnomaly;
  /** What happens to an input after its result is durable: moved under output (default) or removed. */
  onDone?: 'move' | 'remove';
  /** Files per chunk (one durable write per chunk). Default 64. */
  chunk?: number;
  /** Threads for features (default: cores). */
  workers?: number;
  /**
   * A pool already started with the model's featurize config (so its workers boot while the
   * model loads); the batch closes it. Default: a new pool of `workers` threads.
   */
  pool?: FeaturePool;
  /** Cloud Storage client options for gs:// input or output. */
  storage?: GsOptions;
  out?: Output;
  signal?: AbortSignal;
  /** Test hook: called after a chunk's results are durable and before its inputs move. */
  afterDurable?: (files: string[]) => void;
}

export interface BatchSummary {
  predicted: number;
  /** Inputs whose results existed from an earlier run (only their move was finished). */
  resumed: number;
  failed: number;
  seconds: number;
  filesPerSecond: number;
  /** Where results.jsonl, results.csv and errors.jsonl are (paths or gs:// URLs). */
  results: string;
  csv: string;
  errors: string;
}

interface Prepared {
  rels: string[];
  locals: string[];
  hashes: string[];
  /** Indexes (into rels) with no durable result yet. */
  todo: number[];
  feats: Promise<FileResult[]>;
}

function sha256File(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Runs the batch. */
export async function batchPredict(options: BatchOptions): Promise<BatchSummary> {
  const started = performance.now();
  const featurize = options.model.transform.featurize;
  if (options.pool && JSON.stringify(options.pool.config) !== JSON.stringify(featurize)) {
    await options.pool.close();
    throw new Error('batchPredict: the pool was started with another featurize config than the model');
  }
  let io: ReturnType<typeof openBatchIo>;
  try {
    io = openBatchIo(options.input, options.output, options.storage);
  } catch (err) {
    await options.pool?.close();
    throw err;
  }
  const { input, output } = io;
  const checks = options.checks ?? defaultInputChecks('no input schema given');
  const onError = options.onErrorAnomaly ?? 'reject';
  if (options.pool && JSON.stringify(options.pool.checks) !== JSON.stringify(checks)) {
    await options.pool.close();
    throw new Error('batchPredict: the pool was started with other input checks than the batch');
  }
  const pool = options.pool ?? new FeaturePool(featurize, { workers: options.workers, checks });
  try {
    const prior = await output.load();
    const results = prior.results;
    const errors = prior.errors;
    const done = new Map<string, boolean>();
    for (const r of results) done.set(`${r.file}\0${r.sha256}`, false);
    for (const e of errors) if (e.sha256) done.set(`${e.file}\0${e.sha256}`, true);

    const t = options.model.transform;
    const kind = options.model.card.input ?? 'summary';
    const labels = options.model.labels;
    const chunk = options.chunk ?? 64;
    const onDone = options.onDone ?? 'move';
    const inputs = await input.list();
    const chunks: string[][] = [];
    for (let i = 0; i < inputs.length; i += chunk) chunks.push(inputs.slice(i, i + chunk));

    const prepare = async (rels: string[]): Promise<Prepared> => {
      const locals = await input.fetch(rels);
      const hashes = locals.map(sha256File);
      const todo = rels.flatMap((rel, i) => (done.has(`${rel}\0${hashes[i]}`) ? [] : [i]));
      const feats = pool.run(
        todo.map((i) => locals[i]),
        { signal: options.signal },
      );
      feats.catch(() => {}); // observed when its chunk is processed; never an unhandled rejection
      return { rels, locals, hashes, todo, feats };
    };
    const finish = async (p: Prepared, i: number, failed: boolean): Promise<void> => {
      if (onDone === 'move') await output.keep(p.rels[i], p.locals[i], failed);
      await input.release(p.rels[i], p.locals[i]);
    };

    let predicted = 0;
    let resumed = 0;
    let failed = 0;
    let seen = 0;
    let next: Promise<Prepared> | undefined = chunks.length > 0 ? prepare(chunks[0]) : undefined;
    for (let c = 0; c < chunks.length; c++) {
      options.signal?.throwIfAborted();
      const cur: Prepared = await next!;
      next = c + 1 < chunks.length ? prepare(chunks[c + 1]) : undefined;
      next?.catch(() => {});
      const { rels, hashes, todo } = cur;
      // Already durable from an earlier run: only finish the move.
      const pending = new Set(todo);
      for (let i = 0; i < rels.length; i++) {
        if (pending.has(i)) continue;
        await finish(cur, i, done.get(`${rels[i]}\0${hashes[i]}`)!);
        resumed++;
      }
      seen += rels.length;
      if (todo.length === 0) {
        input.dispose(rels);
        continue;
      }
      const feats = await cur.feats;
      const time = new Date().toISOString();
      const okIdx: number[] = [];
      const chunkErrors: BatchError[] = [];
      const flagged = new Map<number, InputAnomaly[]>();
      feats.forEach((f, k) => {
        const i = todo[k];
        const fail = (reason: string, anomalies?: InputAnomaly[]): void =>
          void chunkErrors.push({
            file: rels[i],
            sha256: hashes[i],
            reason,
            ...(anomalies ? { anomalies } : {}),
            time,
          });
        // No check: the file did not decode (the decoder's message names the local copy).
        const check = f.check ?? {
          anomalies: [unreadableAnomaly(('error' in f && f.error) || '', cur.locals[i])],
        };
        const anomalies = check.anomalies.map(({ severity, kind, detail }) => ({ severity, kind, detail }));
        if (!shouldPredict(check, onError))
          return fail(describeRejection(rels[i], check.anomalies), anomalies);
        if ('error' in f) return fail(f.error, anomalies.length ? anomalies : undefined);
        if (anomalies.length) flagged.set(k, anomalies);
        okIdx.push(k);
      });
      const chunkResults: BatchResult[] = [];
      if (okIdx.length > 0) {
        const parts = okIdx.map((k) => {
          const f = feats[k] as Exclude<FileResult, { error: string }>;
          return kind === 'frames' ? normalizeFrames(t, f.frames) : normalizeSummary(t, f.summary);
        });
        const size = parts[0].length;
        const batch = new Float32Array(size * parts.length);
        parts.forEach((p, j) => batch.set(p, j * size));
        const probs = options.model.predictProbabilities(batch, parts.length);
        okIdx.forEach((k, j) => {
          const i = todo[k];
          const scores: Record<string, number> = {};
          let best = 0;
          labels.forEach((l, c) => {
            scores[l] = probs[j * labels.length + c];
            if (probs[j * labels.length + c] > probs[j * labels.length + best]) best = c;
          });
          const anomalies = flagged.get(k);
          chunkResults.push({
            file: rels[i],
            sha256: hashes[i],
            label: labels[best],
            scores,
            model: options.modelHash,
            ...(anomalies ? { anomalies } : {}),
            time,
          });
        });
      }
      // Durable first, then the inputs move: a crash in between re-finds the results next run.
      await output.commit(chunkResults, chunkErrors);
      results.push(...chunkResults);
      errors.push(...chunkErrors);
      options.afterDurable?.(todo.map((i) => rels[i]));
      for (const k of okIdx) await finish(cur, todo[k], false);
      for (const e of chunkErrors) {
        await finish(cur, rels.indexOf(e.file), true);
        options.out?.err(`batch: ${e.file}: ${e.reason}`);
      }
      input.dispose(rels);
      predicted += okIdx.length;
      failed += chunkErrors.length;
      options.out?.err(`batch: ${seen}/${inputs.length} files`);
    }
    const where = await output.finalize(results, errors, labels);
    const seconds = (performance.now() - started) / 1000;
    return {
      predicted,
      resumed,
      failed,
      seconds,
      filesPerSecond: seconds > 0 ? (predicted + failed) / seconds : 0,
      ...where,
    };
  } finally {
    await pool.close();
    input.close();
  }
}
