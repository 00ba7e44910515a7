/**
 * gate: blesses or refuses the evaluated model for the environment `gate.baseline_env`.
 * Thresholds come from `promotion/<env>.yaml` (`gate.thresholds`) when that file sets them, else
 * from params.yaml `gate.thresholds`; the baseline is the evaluate metrics in the lockfile at the
 * head of the environment's branch. No branch (or no evaluate metrics there) means value
 * thresholds only.
 *
 * The baseline is a declared input of the stage (`baselineInput`): the runner resolves it at plan
 * time, names it in the plan reason (`baseline staging@1a2b3c4d changed`), keys the run-cache on
 * its content and locks the commit it was read at, so `verify` replays the gate against the same
 * baseline. The verdict written to `out/gate` holds the baseline's metrics, never its commit, so
 * the out is a function of the declared inputs only.
 */
import fs from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { StageContext, StageResult } from '../../lib/types.ts';
import { ConfigError } from '../../lib/errors.ts';
import { writeFileAtomic } from '../../lib/atomic.ts';
import { environmentThresholds, readPolicy } from '../../lib/environment/policy.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { policyFile } from './stage.ts';
import { evaluateGate, summarizeVerdict, type Baseline, type GateVerdict } from '../../lib/gate.ts';
import type { ThresholdInput } from '../../lib/gate-rules.ts';

export { gateStage, policyFile } from './stage.ts';

export { evaluateGate, summarizeVerdict } from '../../lib/gate.ts';
export type { Baseline, GateVerdict } from '../../lib/gate.ts';
export type { GateReason, Threshold, ThresholdInput } from '../../lib/gate-rules.ts';

export { baselineAt, baselineInput, baselinePredictions, resolveBaseline } from './baseline.ts';
import { baselineAt, baselinePredictions, resolveBaseline } from './baseline.ts';
import { flattenMetrics } from '../../lib/pipeline/metrics.ts';
import { evaluateParams } from '../../lib/params-schema.ts';
import type { BootstrapOptions } from '../../lib/slices/bootstrap.ts';
import { readPredictions } from '../../lib/slices/predictions.ts';

/** Thresholds for `env`: the policy's `gate.thresholds` when set, else params.yaml's. */
export async function resolveThresholds(
  root: string,
  env: string,
  params: Params['gate'],
): Promise<{ thresholds: ThresholdInput[]; source: string }> {
  const policy = fs.existsSync(path.join(root, policyFile(env))) ? await readPolicy(root, env) : undefined;
  return environmentThresholds(env, policy, params.thresholds);
}

/**
 * `baseline` with its slices when a slice threshold compares against them (`slice` with a
 * `tolerance`) and its lockfile leaves them in the evaluate out: read by hash from the local
 * cache, else from the configured remote.
 * @throws ConfigError when neither has them: a slice change must not pass unchecked.
 */
export async function withBaselineSlices(
  root: string,
  baseline: Baseline | null,
  thresholds: ThresholdInput[],
): Promise<Baseline | null> {
  if (!baseline?.slicesOut || !baseline.commit) return baseline;
  if (!thresholds.some((t) => t.slice !== undefined && t.tolerance !== undefined)) return baseline;
  const { repoAt } = await import('../../lib/repo.ts');
  const { readLockfileAt } = await import('../../lib/environment/revision.ts');
  const { defaultRemote } = await import('../../lib/store/remote-config.ts');
  const { recordedEvalMetrics } = await import('../../lib/pipeline/recorded-slices.ts');
  const repo = repoAt(root);
  const lockfile = await readLockfileAt(root, baseline.commit);
  const label = `${baseline.env ?? 'baseline'}@${baseline.commit.slice(0, 8)}`;
  const recorded = lockfile
    ? await recordedEvalMetrics(repo, lockfile, { remote: await defaultRemote(repo), label })
    : undefined;
  if (!recorded || recorded.missing) {
    throw new ConfigError(
      recorded?.missing
        ? `${recorded.missing} A slice change rule needs the baseline's slices: if they are in neither the cache nor a remote, push them from the machine that ran it (lockstep push), or configure the remote that has them.`
        : `${PATHS.eval}/metrics.json@${label}: the baseline's slices are in neither the cache nor a remote (no lockfile). Push them from the machine that ran it (lockstep push), or configure the remote that has them.`,
    );
  }
  return { ...baseline, metrics: { ...baseline.metrics, ...flattenMetrics({ slices: recorded.slices }) } };
}

/** Runs the gate for a repository: reads metrics, thresholds and baseline; writes the verdict. */
export async function runGate(options: {
  root: string;
  params: Params['gate'];
  metricsPath: string;
  verdictPath: string;
  /**
   * `environment` (default): the policy's thresholds when set, else params.yaml's;
   * `params`: params.yaml's only.
   */
  thresholdsFrom?: 'params' | 'environment';
  /** The baseline to check against; default: the environment branch head's. */
  baseline?: Baseline | null;
  /**
   * The candidate's per-clip predictions (default: `predictions.json` beside the metrics); with
   * the baseline's (from the local cache), change thresholds use a paired bootstrap.
   */
  predictionsPath?: string;
  /** Resampling of the paired difference (default: `evaluate.bootstrap` defaults). */
  bootstrap?: BootstrapOptions;
}): Promise<GateVerdict & { thresholdsSource: string }> {
  let metrics: Record<string, number>;
  try {
    // Flat, as the lockfile records them (`intervals.f1_macro.lo`, `slices.speaker.S03.n`, ...).
    metrics = flattenMetrics(JSON.parse(await readFile(options.metricsPath, 'utf8')));
  } catch (err) {
    throw new ConfigError(
      `${path.relative(options.root, options.metricsPath)}: unreadable metrics (${(err as Error).message.split('\n')[0]}). Run the evaluate stage first.`,
    );
  }
  const env = options.params.baseline_env;
  const { thresholds, source } =
    options.thresholdsFrom === 'params'
      ? { thresholds: options.params.thresholds, source: 'params.yaml gate.thresholds' }
      : await resolveThresholds(options.root, env, options.params);
  const baseline = await withBaselineSlices(
    options.root,
    options.baseline !== undefined ? options.baseline : await resolveBaseline(options.root, env),
    thresholds,
  );
  const predictionsPath =
    options.predictionsPath ?? path.join(path.dirname(options.metricsPath), 'predictions.json');
  const baselinePreds = baseline?.commit
    ? await baselinePredictions(options.root, baseline.commit)
    : undefined;
  const paired =
    baselinePreds && fs.existsSync(predictionsPath)
      ? {
          candidate: readPredictions(predictionsPath),
          baseline: baselinePreds,
          bootstrap: options.bootstrap ?? evaluateParams.parse({}).bootstrap,
        }
      : null;
  const verdict = evaluateGate({ metrics, thresholds, baseline, paired });
  // The out holds what the verdict is a function of: the baseline's metrics, not its commit.
  const written = {
    ...verdict,
    baseline: verdict.baseline && { env: verdict.baseline.env, metrics: verdict.baseline.metrics },
  };
  await mkdir(path.dirname(options.verdictPath), { recursive: true });
  await writeFileAtomic(options.verdictPath, JSON.stringify(written, null, 2) + '\n');
  return { ...verdict, thresholdsSource: source };
}

/** The gate stage's body: the verdict, its metrics, and one line per threshold. */
export async function runGateStage(ctx: StageContext): Promise<StageResult> {
  const env = (ctx.params as Params).gate.baseline_env;
  // The baseline the plan resolved (and locked), read again at its commit.
  const ref = ctx.inputs?.baseline;
  const baseline = ref === undefined ? undefined : ref.rev ? await baselineAt(ctx.root, env, ref.rev) : null;
  const verdict = await runGate({
    root: ctx.root,
    baseline,
    params: (ctx.params as Params).gate,
    bootstrap: evaluateParams.parse((ctx.params as Partial<Params>).evaluate ?? {}).bootstrap,
    metricsPath: ctx.abs(`${PATHS.eval}/metrics.json`),
    verdictPath: ctx.abs(`${PATHS.gate}/verdict.json`),
  });
  await writeFileAtomic(
    ctx.abs(`${PATHS.gate}/metrics.json`),
    JSON.stringify({
      passed: verdict.passed ? 1 : 0,
      failed_thresholds: verdict.reasons.filter((r) => !r.passed).length,
    }) + '\n',
  );
  ctx.out.err(`gate: thresholds from ${verdict.thresholdsSource}`);
  for (const r of verdict.reasons) {
    ctx.out.err(`gate: ${r.passed ? 'ok  ' : 'FAIL'} ${r.kind} ${r.metric}: ${r.detail}`);
  }
  const summary = summarizeVerdict(verdict);
  return verdict.passed ? { summary } : { failed: true, summary };
}
