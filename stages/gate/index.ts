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
import { createHash } from 'node:crypto';
import type { InputRef, StageContext, StageDef, StageInput } from '../../lib/types.ts';
import { canonicalJson } from '../../lib/pipeline/fingerprint.ts';
import { ConfigError } from '../../lib/errors.ts';
import { readFileAtRev, resolveRev, revExists } from '../../lib/git.ts';
import { parseLockfile } from '../../lib/lockfile.ts';
import { writeFileAtomic } from '../../lib/atomic.ts';
import { environmentThresholds, readPolicy } from '../../lib/environment/policy.ts';
import type { Params } from '../../lib/params-schema.ts';
import { PATHS } from '../../lib/paths.ts';
import {
  evaluateGate,
  summarizeVerdict,
  type Baseline,
  type GateVerdict,
  type ThresholdInput,
} from '../../lib/gate.ts';

export { evaluateGate, summarizeVerdict } from '../../lib/gate.ts';
export type { Baseline, GateReason, GateVerdict, Threshold, ThresholdInput } from '../../lib/gate.ts';

const LOCKFILE = 'artifacts.lock.yaml';

function policyFile(env: string): string {
  return `promotion/${env}.yaml`;
}

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
    return baselineAt(root, env, await resolveRev(root, rev));
  }
  return null;
}

/** The evaluate metrics in the lockfile at `commit`, as environment `env`'s baseline (or null). */
export async function baselineAt(root: string, env: string, commit: string): Promise<Baseline | null> {
  const text = await readFileAtRev(root, commit, LOCKFILE);
  if (text === undefined) return null;
  const metrics = parseLockfile(text, `${commit.slice(0, 8)}:${LOCKFILE}`).stages.evaluate?.metrics;
  return metrics && Object.keys(metrics).length > 0 ? { env, commit, metrics } : null;
}

/** The identity of a baseline as a stage input: its metrics' content; where it was read, as label. */
function baselineRef(env: string, baseline: Baseline | null): InputRef {
  const hash = createHash('sha256')
    .update(canonicalJson({ env, metrics: baseline?.metrics ?? null }))
    .digest('hex');
  if (!baseline?.commit) return { hash, label: `${env} (none)` };
  return { hash, label: `${env}@${baseline.commit.slice(0, 8)}`, rev: baseline.commit };
}

/**
 * The gate's baseline as a declared stage input: the environment branch head's evaluate metrics,
 * or, pinned to a recorded value, the metrics at the recorded commit.
 */
export function baselineInput(env: string): StageInput {
  return {
    name: 'baseline',
    async resolve(root, pinned) {
      if (pinned) return baselineRef(env, pinned.rev ? await baselineAt(root, env, pinned.rev) : null);
      return baselineRef(env, await resolveBaseline(root, env));
    },
  };
}

/** Thresholds for `env`: the policy's `gate.thresholds` when set, else params.yaml's. */
export async function resolveThresholds(
  root: string,
  env: string,
  params: Params['gate'],
): Promise<{ thresholds: ThresholdInput[]; source: string }> {
  const policy = fs.existsSync(path.join(root, policyFile(env))) ? await readPolicy(root, env) : undefined;
  return environmentThresholds(env, policy, params.thresholds);
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
  const baseline =
    options.baseline !== undefined ? options.baseline : await resolveBaseline(options.root, env);
  const verdict = evaluateGate({ metrics, thresholds, baseline });
  // The out holds what the verdict is a function of: the baseline's metrics, not its commit.
  const written = {
    ...verdict,
    baseline: verdict.baseline && { env: verdict.baseline.env, metrics: verdict.baseline.metrics },
  };
  await mkdir(path.dirname(options.verdictPath), { recursive: true });
  await writeFileAtomic(options.verdictPath, JSON.stringify(written, null, 2) + '\n');
  return { ...verdict, thresholdsSource: source };
}

/** The gate stage for `params`. */
export function gateStage(params: Params): StageDef {
  const env = params.gate.baseline_env;
  return {
    name: 'gate',
    description: `Check evaluate metrics against thresholds and the ${env} baseline`,
    code: ['stages/gate', 'lib/environment/policy.ts', 'lib/lockfile.ts', 'lib/git.ts'],
    // The policy holds thresholds and the branch name: editing it re-runs the gate (a missing dep
    // just means the stage always runs).
    deps: [`${PATHS.eval}/metrics.json`, policyFile(env)],
    params: ['gate.baseline_env', 'gate.thresholds'],
    inputs: [baselineInput(env)],
    outs: [PATHS.gate],
    // `passed` (1 or 0) and the failed-threshold count land in the lockfile, so the registry can
    // show every commit's gate verdict without fetching artifacts.
    metrics: [`${PATHS.gate}/metrics.json`],
    async run(ctx: StageContext) {
      // The baseline the plan resolved (and locked), read again at its commit.
      const ref = ctx.inputs?.baseline;
      const baseline =
        ref === undefined ? undefined : ref.rev ? await baselineAt(ctx.root, env, ref.rev) : null;
      const verdict = await runGate({
        root: ctx.root,
        baseline,
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
    },
  };
}
