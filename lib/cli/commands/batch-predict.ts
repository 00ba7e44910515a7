/**
 * `lockstep batch-predict --env <env> --input <dir|gs://...> --output <dir|gs://...>`: the model
 * pinned for the environment predicts every file under the input; results as JSON lines and CSV;
 * each input is moved (or removed) only after its result is durably written; re-runs resume.
 * Cloud Storage is reached with Application Default Credentials (`STORAGE_EMULATOR_HOST` for
 * an emulator). Each file is checked against the model's input schema (its `schema.json`); files
 * it refuses go to errors.jsonl and failed/, or with the policy's `serving.on_error_anomaly: flag`
 * are predicted and flagged.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('batch-predict')
    .description(
      "predict every audio file under --input with <env>'s pinned model; idempotent and crash-safe",
    )
    .requiredOption(
      '-e, --env <env>',
      'environment whose pinned model predicts (its branch; the workspace if it has none)',
    )
    .requiredOption('-i, --input <dir|gs://...>', 'folder or gs:// prefix of audio files')
    .requiredOption(
      '-o, --output <dir|gs://...>',
      'folder or gs:// prefix for results.jsonl, results.csv, errors.jsonl, processed/, failed/',
    )
    .option(
      '--remove',
      'remove inputs after their results are written (default: move them under output/processed)',
    )
    .option('-j, --jobs <n>', 'feature worker threads (default: cores)', (v) => Number(v))
    .option('--json', 'print the summary as JSON')
    .option(
      '--compute <backend>',
      "local (default) or vertex: a Vertex AI BatchPredictionJob with the environment's uploaded model version",
    )
    .action(
      async (opts: {
        env: string;
        input: string;
        output: string;
        remove?: boolean;
        jobs?: number;
        json?: boolean;
        compute?: string;
      }) => {
        if (opts.compute !== undefined && opts.compute !== 'local') return vertexBatch(opts, io);
        const { resolvePinnedModel } = await import('../../registry/pinned.ts');
        const { batchPredict } = await import('../../../stages/batch/index.ts');
        const { loadModelDir } = await import('../../ml/model.ts');
        const local = (p: string): string => (p.startsWith('gs://') ? p : path.resolve(io.cwd, p));
        const repo = findRepo(io.cwd);
        const pinned = await resolvePinnedModel(repo, opts.env, { out: io });
        const { readInputChecks } = await import('../../validation/schema.ts');
        const { readPolicy } = await import('../../environment/policy.ts');
        const checks = readInputChecks(pinned.dir);
        // An environment without a policy file (the workspace) keeps the default: reject.
        const policy = await readPolicy(repo.root, opts.env).catch(() => undefined);
        const onErrorAnomaly = policy?.serving.on_error_anomaly ?? 'reject';
        if (!opts.json) io.err(`batch: input checks: ${checks.source}`);
        // Feature workers boot while the model loads.
        const { FeaturePool } = await import('../../../stages/featurize/pool.ts');
        const { readTransform } = await import('../../ml/transform.ts');
        const pool = new FeaturePool(readTransform(path.join(pinned.dir, 'transform.json')).featurize, {
          workers: opts.jobs,
          checks,
        });
        let model;
        try {
          model = await loadModelDir(pinned.dir);
        } catch (err) {
          await pool.close();
          throw err;
        }
        const summary = await batchPredict({
          input: local(opts.input),
          output: local(opts.output),
          model,
          modelHash: pinned.hash,
          checks,
          onErrorAnomaly,
          onDone: opts.remove ? 'remove' : 'move',
          pool,
          out: opts.json ? undefined : io,
        });
        if (opts.json)
          return io.out(
            JSON.stringify({ env: opts.env, model: pinned.hash, source: pinned.source, ...summary }, null, 2),
          );
        io.out(
          `batch ${opts.env} (model ${pinned.hash.slice(0, 12)} from ${pinned.source}): ${summary.predicted} predicted, ${summary.resumed} resumed, ${summary.failed} failed, ${summary.filesPerSecond.toFixed(1)} files/s`,
        );
        io.out(
          `results: ${summary.results}, ${summary.csv}${summary.failed ? `; errors: ${summary.errors}` : ''}`,
        );
      },
    );
}

/** `--compute vertex`: the batch as a Vertex AI BatchPredictionJob (stages/batch/vertex.ts). */
async function vertexBatch(
  opts: { env: string; input: string; output: string; remove?: boolean; json?: boolean; compute?: string },
  io: CliIO,
): Promise<void> {
  const { UsageError } = await import('../../errors.ts');
  if (opts.compute !== 'vertex')
    throw new UsageError(`--compute: expected local or vertex "${opts.compute}". Pass --compute vertex.`);
  const repo = findRepo(io.cwd);
  const { readPolicy } = await import('../../environment/policy.ts');
  const policy = await readPolicy(repo.root, opts.env);
  const target = policy.endpoint;
  if (target.kind !== 'vertex') {
    throw new UsageError(
      `promotion/${opts.env}.yaml: endpoint.kind: --compute vertex needs a Vertex AI endpoint "${target.kind}". Set endpoint.kind: vertex or drop --compute vertex.`,
    );
  }
  const { resolvePinnedModel } = await import('../../registry/pinned.ts');
  const pinned = await resolvePinnedModel(repo, opts.env, { out: io });
  const { uploadedModelVersion } = await import('../../compute/model-version.ts');
  const modelVersion = await uploadedModelVersion(
    target,
    pinned.hash,
    `promotion/${opts.env}.yaml: endpoint.model`,
  );
  const fs = await import('node:fs');
  const labels = JSON.parse(fs.readFileSync(path.join(pinned.dir, 'labels.json'), 'utf8')) as string[];
  const { vertexBatchPredict } = await import('../../../stages/batch/vertex.ts');
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let summary;
  try {
    summary = await vertexBatchPredict({
      input: opts.input,
      output: opts.output,
      modelVersion,
      modelHash: pinned.hash,
      labels,
      project: target.project,
      region: target.region,
      machineType: target.machine_type,
      onDone: opts.remove ? 'remove' : 'move',
      out: opts.json ? undefined : io,
      signal: controller.signal,
    });
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  if (opts.json)
    return io.out(
      JSON.stringify({ env: opts.env, model: pinned.hash, source: pinned.source, ...summary }, null, 2),
    );
  io.out(
    `batch ${opts.env} on Vertex AI (model ${pinned.hash.slice(0, 12)}, ${modelVersion}): ${summary.predicted} predicted, ${summary.resumed} resumed, ${summary.failed} failed`,
  );
  io.out(`results: ${summary.results}, ${summary.csv}${summary.failed ? `; errors: ${summary.errors}` : ''}`);
}
