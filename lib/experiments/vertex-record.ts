/**
 * What a pipeline run, an `exp run` or a tune trial sends to Vertex AI Experiments (see
 * ./vertex.ts): its params (params.yaml, flattened), its final metrics (the lockfile's, named as
 * `lockstep exp show` names them), and train's per-epoch history when the run has one.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import { readConfig } from '../config.ts';
import { parseLockfile } from '../lockfile.ts';
import type { Output } from '../output.ts';
import { PATHS } from '../paths.ts';
import type { Repo } from '../repo.ts';
import { experimentLogger, flattenParams, type ExperimentRunRecord } from './vertex.ts';

/** Set by `exp run` for its pipeline child: the experiment is logged once, under its own name. */
export const EXPERIMENT_LOG_ENV = 'LOCKSTEP_EXPERIMENT_LOG';

export interface LogRunInput {
  /** The run's name: `commit-<sha12>`, the experiment's name or the trial's name. */
  run: string;
  paramsText: string;
  /** The run's lockfile (its metrics); absent for a tune trial. */
  lockText?: string;
  /** Metrics given directly (a tune trial's). */
  metrics?: Record<string, number>;
  /** Where train wrote history.json (default none). */
  trainDir?: string;
  failed?: boolean;
}

export interface LogRunOptions {
  clientOptions?: Record<string, unknown>;
  out?: Output;
}

/** Metrics of a lockfile, keyed as `exp show` keys them (evaluate's bare, others `<stage>.<k>`). */
export function lockfileMetrics(lockText: string): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const [stage, entry] of Object.entries(parseLockfile(lockText).stages)) {
    for (const [k, v] of Object.entries(entry.metrics ?? {}))
      metrics[stage === 'evaluate' ? k : `${stage}.${k}`] = v;
  }
  return metrics;
}

/** train's history.json as one list per metric, by epoch; undefined when absent. */
export async function readCurves(trainDir: string): Promise<Record<string, number[]> | undefined> {
  let history: { epochs?: Record<string, unknown>[] };
  try {
    history = JSON.parse(await readFile(path.join(trainDir, 'history.json'), 'utf8'));
  } catch {
    return undefined;
  }
  const curves: Record<string, number[]> = {};
  for (const epoch of history.epochs ?? []) {
    for (const [k, v] of Object.entries(epoch)) {
      if (k === 'epoch' || typeof v !== 'number' || !Number.isFinite(v)) continue;
      (curves[k] ??= []).push(v);
    }
  }
  return Object.keys(curves).length > 0 ? curves : undefined;
}

/**
 * Logs one run when `.lockstep/config.yaml` sets `vertex.experiment`; returns the run's context
 * name, or undefined when nothing was configured (and nothing was called). Throws a one-line
 * LockstepError naming `vertex` when the service refuses.
 */
export async function logExperimentRun(
  repo: Repo,
  input: LogRunInput,
  options: LogRunOptions = {},
): Promise<string | undefined> {
  if (process.env[EXPERIMENT_LOG_ENV] === 'off') return undefined;
  const logger = experimentLogger(readConfig(repo).vertex, { clientOptions: options.clientOptions });
  if (!logger) return undefined;
  try {
    const record: ExperimentRunRecord = {
      run: input.run,
      params: flattenParams(parse(input.paramsText) ?? {}),
      metrics: { ...(input.lockText ? lockfileMetrics(input.lockText) : {}), ...input.metrics },
      curves: input.trainDir ? await readCurves(input.trainDir) : undefined,
      state: input.failed ? 'FAILED' : 'COMPLETE',
    };
    const name = await logger.logRun(record);
    options.out?.err(`vertex experiments: run ${logger.runId(input.run)} of ${logger.experiment}`);
    return name;
  } finally {
    await logger.close();
  }
}

/** The run name of a pipeline run at `commit` (the commit column of `exp show`). */
export function commitRunName(commit: string): string {
  return `commit-${commit.slice(0, 12)}`;
}

/** Default train output directory of a checkout. */
export function trainDirOf(root: string): string {
  return path.join(root, PATHS.train);
}
