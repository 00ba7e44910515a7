/**
 * Batch prediction as a Vertex AI BatchPredictionJob (`batch-predict --compute vertex`): the
 * inputs not yet durable in the output are read once (for their sha256, as the local batch
 * records it), written as JSON lines instances (`{"file": <rel>, "audio": <base64 WAV>}`) to
 * `<output>/vertex/<key>/instances.jsonl`, and one job predicts them with the environment's
 * uploaded model version (the serving container: Vertex AI posts batches of instances to its
 * predict route; `file` is the instance key, not sent to the model). Its `prediction.results-*`
 * and `prediction.errors_stats-*` become the same results.jsonl, results.csv and errors.jsonl
 * lines the local batch writes, then inputs are moved (or removed) as there. Idempotent: the key
 * is the model hash and the pending inputs' hashes, so a re-run reattaches to (or reuses) the job
 * of the same key instead of creating another, and inputs already durable are skipped.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { Output } from '../../lib/output.ts';
import { StageError, UsageError } from '../../lib/errors.ts';
import {
  jobServiceClient,
  jobState,
  TERMINAL_STATES,
  withRetry,
  type BatchPredictionJob,
} from '../../lib/compute/jobs-client.ts';
import { vertexPollMs } from '../../lib/compute/jobs-client.ts';
import { openGsPrefix } from '../../lib/store/gcs-objects.ts';
import type { PredictionResult } from '../../lib/serving/endpoint.ts';
import { isGsUrl, openBatchIo } from './io.ts';
import type { BatchError, BatchResult } from './records.ts';

export interface VertexBatchOptions {
  input: string;
  output: string;
  /** `projects/.../models/<id>@<version>`: the environment's uploaded model version. */
  modelVersion: string;
  modelHash: string;
  labels: string[];
  project: string;
  region: string;
  machineType: string;
  onDone?: 'move' | 'remove';
  /** Instances per predict request (manual_batch_tuning_parameters.batch_size). Default 16. */
  batchSize?: number;
  pollMs?: number;
  out?: Output;
  signal?: AbortSignal;
}

export interface VertexBatchSummary {
  predicted: number;
  resumed: number;
  failed: number;
  seconds: number;
  filesPerSecond: number;
  job?: string;
  results: string;
  csv: string;
  errors: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function parseLines(text: string): Record<string, any>[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, any>);
}

export async function vertexBatchPredict(options: VertexBatchOptions): Promise<VertexBatchSummary> {
  const started = performance.now();
  for (const [flag, url] of [
    ['--input', options.input],
    ['--output', options.output],
  ] as const) {
    if (!isGsUrl(url))
      throw new UsageError(
        `${flag}: --compute vertex reads and writes Cloud Storage "${url}". Pass a gs:// prefix.`,
      );
  }
  const out = options.out;
  const { input, output } = openBatchIo(options.input, options.output);
  try {
    const prior = await output.load();
    const done = new Map<string, boolean>();
    for (const r of prior.results) done.set(`${r.file}\0${r.sha256}`, false);
    for (const e of prior.errors) if (e.sha256) done.set(`${e.file}\0${e.sha256}`, true);
    const rels = await input.list();
    const locals = await input.fetch(rels);
    const hashes = locals.map((p) => createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
    const onDone = options.onDone ?? 'move';
    const finish = async (i: number, failed: boolean) => {
      if (onDone === 'move') await output.keep(rels[i]!, locals[i]!, failed);
      await input.release(rels[i]!, locals[i]!);
    };
    let resumed = 0;
    const todo: number[] = [];
    for (let i = 0; i < rels.length; i++) {
      const key = `${rels[i]}\0${hashes[i]}`;
      if (done.has(key)) {
        await finish(i, done.get(key)!);
        resumed++;
      } else todo.push(i);
    }
    const results = prior.results;
    const errors = prior.errors;
    let job: BatchPredictionJob | undefined;
    let predicted = 0;
    let failed = 0;
    if (todo.length > 0) {
      const key = createHash('sha256')
        .update(options.modelVersion + '\0' + options.modelHash)
        .update(todo.map((i) => `${rels[i]}\0${hashes[i]}`).join('\n'))
        .digest('hex')
        .slice(0, 40);
      const prefix = await openGsPrefix(options.output, { where: '--output' });
      const instancesName = prefix.name(`vertex/${key}/instances.jsonl`);
      const file = prefix.bucket.file(instancesName);
      const [exists] = await file.exists();
      if (!exists) {
        const lines = todo.map(
          (i) =>
            JSON.stringify({ file: rels[i], audio: fs.readFileSync(locals[i]!).toString('base64') }) + '\n',
        );
        await file.save(lines.join(''), { contentType: 'application/jsonl', resumable: false });
      }
      job = await runJob(options, key, `gs://${prefix.loc.bucket}/${instancesName}`);
      const dir = job.outputInfo?.gcsOutputDirectory;
      if (!dir)
        throw new StageError('batch', `Vertex AI job ${job.name} succeeded without an output directory`);
      const outPrefix = await openGsPrefix(dir, { where: 'outputInfo.gcsOutputDirectory' });
      const [files] = await outPrefix.bucket.getFiles({ prefix: outPrefix.name('') });
      const byFile = new Map<string, { prediction?: PredictionResult; status?: string }>();
      for (const f of files) {
        const base = f.name.split('/').pop() ?? '';
        const isResult = base.startsWith('prediction.results-');
        if (!isResult && !base.startsWith('prediction.errors_stats-')) continue;
        const [buf] = await f.download();
        for (const line of parseLines(buf.toString('utf8'))) {
          const k = String(line.key ?? '');
          byFile.set(k, isResult ? { prediction: line.prediction } : { status: String(line.status ?? '') });
        }
      }
      const time = new Date().toISOString();
      const newResults: BatchResult[] = [];
      const newErrors: BatchError[] = [];
      for (const i of todo) {
        const got = byFile.get(rels[i]!);
        if (got?.prediction) {
          const p = got.prediction;
          newResults.push({
            file: rels[i]!,
            sha256: hashes[i]!,
            label: p.label,
            scores: p.scores,
            model: options.modelHash,
            ...(p.anomalies?.length ? { anomalies: p.anomalies } : {}),
            time,
          });
        } else {
          newErrors.push({
            file: rels[i]!,
            sha256: hashes[i]!,
            reason: got?.status || `Vertex AI job ${job.name} returned no prediction for it`,
            time,
          });
        }
      }
      // Durable first, then the inputs move, as in the local batch.
      await output.commit(newResults, newErrors);
      results.push(...newResults);
      errors.push(...newErrors);
      const failedFiles = new Set(newErrors.map((e) => e.file));
      for (const i of todo) await finish(i, failedFiles.has(rels[i]!));
      for (const e of newErrors) out?.err(`batch: ${e.file}: ${e.reason}`);
      predicted = newResults.length;
      failed = newErrors.length;
    }
    input.dispose(rels);
    const where = await output.finalize(results, errors, options.labels);
    const seconds = (performance.now() - started) / 1000;
    return {
      predicted,
      resumed,
      failed,
      seconds,
      filesPerSecond: seconds > 0 ? (predicted + failed) / seconds : 0,
      ...(job?.name ? { job: job.name } : {}),
      ...where,
    };
  } finally {
    input.close();
  }
}

/** Finds the job of `key` (live: reattach; succeeded: reuse) or creates it, then follows it. */
async function runJob(
  options: VertexBatchOptions,
  key: string,
  instancesUri: string,
): Promise<BatchPredictionJob> {
  const client = jobServiceClient(options.region);
  const parent = `projects/${options.project}/locations/${options.region}`;
  const out = options.out;
  try {
    const [existing] = await withRetry(() =>
      client.listBatchPredictionJobs({ parent, filter: `labels.lockstep-key="${key}"` }),
    );
    let job =
      existing.find((j) => jobState(j) === 'JOB_STATE_SUCCEEDED') ??
      existing.find((j) => !TERMINAL_STATES.has(jobState(j)));
    let submitted = false;
    if (job) out?.err(`batch: reattaching to ${job.name} (${jobState(job)})`);
    else {
      [job] = await withRetry(
        () =>
          client.createBatchPredictionJob({
            parent,
            batchPredictionJob: {
              displayName: `lockstep-batch-${key.slice(0, 12)}`,
              model: options.modelVersion,
              labels: { 'lockstep-key': key },
              inputConfig: { instancesFormat: 'jsonl', gcsSource: { uris: [instancesUri] } },
              instanceConfig: { keyField: 'file' },
              outputConfig: {
                predictionsFormat: 'jsonl',
                gcsDestination: { outputUriPrefix: options.output.replace(/\/$/, '') + `/vertex/${key}` },
              },
              dedicatedResources: {
                machineSpec: { machineType: options.machineType },
                startingReplicaCount: 1,
                maxReplicaCount: 1,
              },
              manualBatchTuningParameters: { batchSize: options.batchSize ?? 16 },
            },
          }),
        { signal: options.signal },
      );
      submitted = true;
      out?.err(`batch: submitted ${job.name} (model ${options.modelVersion})`);
    }
    const name = job.name!;
    const pollMs = options.pollMs ?? vertexPollMs();
    let state = '';
    let cancelled = false;
    for (;;) {
      if (options.signal?.aborted && submitted && !cancelled) {
        cancelled = true;
        out?.err(`batch: interrupted: cancelling ${name}`);
        await withRetry(() => client.cancelBatchPredictionJob({ name }));
      }
      [job] = await withRetry(() => client.getBatchPredictionJob({ name }));
      const now = jobState(job);
      if (now !== state)
        out?.err(`batch: ${name.split('/').pop()} ${now.replace('JOB_STATE_', '').toLowerCase()}`);
      state = now;
      if (TERMINAL_STATES.has(state)) break;
      await sleep(pollMs);
    }
    if (state === 'JOB_STATE_SUCCEEDED' || state === 'JOB_STATE_PARTIALLY_SUCCEEDED') return job;
    const link = `https://console.cloud.google.com/vertex-ai/locations/${options.region}/batch-predictions/${name.split('/').pop()}?project=${options.project}`;
    throw new StageError(
      'batch',
      `Vertex AI batch prediction job ${name.split('/').pop()} ${state === 'JOB_STATE_CANCELLED' ? 'was cancelled' : `failed: ${(job.error?.message ?? state).replace(/\.$/, '')}`}. ${link}`,
    );
  } finally {
    await client.close();
  }
}
