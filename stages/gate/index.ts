/**
 * gate: blesses or refuses the evaluated model for the environment `gate.baseline_env`.
 * Thresholds come from `promotion/<env>.yaml` (`gate.thresholds`) when that file sets them, else
 * from params.yaml `gate.thresholds`; the baseline is the evaluate metrics in the lockfile at the
 * head of the environment's branch. No branch (or no evaluate metrics there) means value
 * thresholds only.
 */
import fs from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { StageContext, StageResult } from '../../lib/types.ts';
import { ConfigError } from '../../lib/errors.ts';
import { readFileAtRev, resolveRev, revExists } from '../../lib/git.ts';
import { parseLockfile } from '../../lib/lockfile.ts';
import { writeFileAtomic } from '../../lib/ml/io-handler.ts';
import { readPolicy } from '../../lib/promotion/policy.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import { policyFile } from './stage.ts';
import {
  evaluateGate,
  summarizeVerdict,
  type Baseline,
  type GateVerdict,
  type ThresholdInput,
} from '../../lib/gate.ts';

export { gateStage, policyFile } from './stage.ts';

export { evaluateGate, summarizeVerdict } from '../../lib/gate.ts';
export type { Baseline, GateReason, GateVerdict, Threshold, ThresholdInput } from '../../lib/gate.ts';

const LOCKFILE = 'artifacts.lock.yaml';

/** The environment's branch: `branch` in its promotion policy, else the environment's name. */
export async function environmentBranch(root: string, env: string): Promise<string> {
  if (!fs.existsSync(path.join(root, policyFile(env)))) return env;
  return (await readPolicy(root, env)).branch;
}

/**
 * The deployed model's metrics: the `evaluate` stage metrics of the lockfile at the head of the
 * environment's branch (local branch first, then `origin/<branch>`, as CI checkouts have it).
 * Null when the branch, the lockfile or the metrics do not exist.
 */
export async function resolveBaseline(root: string, env: string): Promise<Baseline | null> {
  const branch = await environmentBranch(root, env);
  for (const rev of [`refs/heads/${branch}`, `refs/remotes/origin/${branch}`]) {
    if (!(await revExists(root, rev))) continue;
    const commit = await resolveRev(root, rev);
    const text = await readFileAtRev(root, commit, LOCKFILE);
    if (text === undefined) return null;
    const metrics = parseLockfile(text, `${branch}:${LOCKFILE}`).stages.evaluate?.metrics;
    return metrics && Object.keys(metrics).length > 0 ? { env, commit, metrics } : null;
  }
  return null;
}

/** Thresholds for `env`: the policy's `gate.thresholds` when set, else params.yaml's. */
export async function resolveThresholds(
  root: string,
  env: string,
  params: Params['gate'],
): Promise<{ thresholds: ThresholdInput[]; source: string }> {
  if (fs.existsSync(path.join(root, policyFile(env)))) {
    const policy = await readPolicy(root, env);
    if (policy.gate.thresholds) return { thresholds: policy.gate.thresholds, source: policyFile(env) };
  }
  return { thresholds: params.thresholds, source: 'params.yaml gate.thresholds' };
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
}): Promise<GateVerdict & { thresholdsSource: string }> {
  let metrics: Record<string, number>;
  try {
    metrics = JSON.parse(await readFile(options.metricsPath, 'utf8'));
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
  const baseline = await resolveBaseline(options.root, env);
  const verdict = evaluateGate({ metrics, thresholds, baseline });
  await mkdir(path.dirname(options.verdictPath), { recursive: true });
  await writeFileAtomic(options.verdictPath, JSON.stringify(verdict, null, 2) + '\n');
  return { ...verdict, thresholdsSource: source };
}

/** The gate stage's body: the verdict, its metrics, and one line per threshold. */
export async function runGateStage(ctx: StageContext): Promise<StageResult> {
  const verdict = await runGate({
    root: ctx.root,
    params: (ctx.params as Params).gate,
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
