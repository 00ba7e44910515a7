/**
 * The gate's baseline: the evaluate metrics the environment's branch pins, as a declared stage
 * input. Light on purpose (git and the lockfile only): the stage declaration imports it, so
 * planning needs no stage body.
 */
import { createHash } from 'node:crypto';
import type { InputRef, StageInput } from '../../lib/types.ts';
import type { Baseline } from '../../lib/gate.ts';
import { canonicalJson } from '../../lib/pipeline/fingerprint.ts';
import { readFileAtRev, resolveRev, revExists } from '../../lib/git.ts';
import { parseLockfile } from '../../lib/lockfile.ts';
import { environmentBranch } from '../../lib/environment/refs.ts';

const LOCKFILE = 'artifacts.lock.yaml';

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
