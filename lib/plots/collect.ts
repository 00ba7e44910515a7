/**
 * The data behind the plots of one revision: evaluate's metrics and confusion matrix, train's
 * learning curves, slice metrics when evaluate wrote them, and, for an environment, its latest
 * monitoring report. A revision is the workspace, a commit, branch, tag, environment or
 * experiment; a committed revision is read from the lockfile at that commit and the cache or the
 * remote (no checkout), like `metrics diff`. A file a revision does not have is noted, not an
 * error: an old commit without learning curves still shows its confusion matrix.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LockstepError } from '../errors.ts';
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import { PATHS } from '../paths.ts';
import { EXPERIMENT_REFS } from '../store/gc-roots.ts';
import { isEnvironment, resolveRef, revParse } from '../environment/refs.ts';
import { openArtifact } from '../registry/fetch.ts';
import { WORKSPACE } from '../pipeline/revisions.ts';
import { parseSlices, type SliceRow } from './slices.ts';
import type { ConfusionData, CurvePoint, FeatureHistogram } from './templates.ts';

export { WORKSPACE };

/** A revision as the user typed it, and what it resolved to. */
export interface PlotRevision {
  /** What the user typed (the label in every plot). */
  rev: string;
  /** Full commit id; undefined for the workspace. */
  commit?: string;
  /** Set when `rev` named an environment. */
  env?: string;
  /** Set when `rev` named an experiment (`refs/exps/<name>`). */
  experiment?: string;
}

export interface RevisionPlotData extends PlotRevision {
  /** Evaluate's metrics (`accuracy`, `f1_macro`, `f1.<label>`, ...), empty when absent. */
  metrics: Record<string, number>;
  confusion?: ConfusionData;
  history?: { epochs: CurvePoint[]; best_epoch?: number };
  slices: SliceRow[];
  /** An environment's latest monitoring report (`out/monitor/<env>/report.json`). */
  monitor?: { env: string; features: FeatureHistogram[] };
  /** What this revision lacks and why, one line each. */
  notes: string[];
}

/**
 * Resolves `rev`: `workspace`; an environment (its branch); a commit, branch or tag; or an
 * experiment name. Git names win over experiment names, as in `git rev-parse`.
 * @throws LockstepError naming the revision when it names nothing.
 */
export async function resolvePlotRevision(repo: Repo, rev: string): Promise<PlotRevision> {
  if (rev === WORKSPACE) return { rev };
  if (isEnvironment(rev)) {
    const r = await resolveRef(repo.root, rev);
    return { rev, commit: r.commit, env: rev };
  }
  const commit = await revParse(repo.root, rev);
  if (commit) return { rev, commit };
  const exp = /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(rev)
    ? await revParse(repo.root, `${EXPERIMENT_REFS}${rev}`)
    : undefined;
  if (exp) return { rev, commit: exp, experiment: rev };
  throw new LockstepError(
    `revision "${rev}": not a commit, branch, tag, environment or experiment. Use one of those, or "workspace" (list experiments with lockstep exp show).`,
  );
}

export interface CollectOptions {
  /** Where objects missing from the cache come from. */
  remote?: Remote;
}

/** The bytes of `rel` at `r` (workspace file, or pinned artifact), or undefined with a note. */
async function readAt(
  repo: Repo,
  r: PlotRevision,
  rel: string,
  notes: string[],
  options: CollectOptions,
): Promise<string | undefined> {
  try {
    if (!r.commit) return await readFile(path.join(repo.root, rel), 'utf8');
    return (await openArtifact(repo, rel, { rev: r.commit, remote: options.remote })).toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      notes.push(`${rel}: not in the workspace`);
      return undefined;
    }
    if (err instanceof LockstepError) {
      notes.push(err.message);
      return undefined;
    }
    throw err;
  }
}

function parseJson<T>(text: string | undefined, file: string, rev: string): T | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new LockstepError(
      `${file}@${rev}: not valid JSON. Re-run the stage that writes it (lockstep repro).`,
    );
  }
}

/** Reads everything the plots of `rev` need (see the module comment). */
export async function collectPlotData(
  repo: Repo,
  rev: string,
  options: CollectOptions = {},
): Promise<RevisionPlotData> {
  const r = await resolvePlotRevision(repo, rev);
  const notes: string[] = [];
  const file = (name: string) => `${PATHS.eval}/${name}`;
  const metricsText = await readAt(repo, r, file('metrics.json'), notes, options);
  const raw = parseJson<Record<string, unknown>>(metricsText, file('metrics.json'), rev) ?? {};
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'number') metrics[k] = v;
  const confusion = parseJson<ConfusionData>(
    await readAt(repo, r, file('confusion.json'), notes, options),
    file('confusion.json'),
    rev,
  );
  const history = parseJson<{ epochs: CurvePoint[]; best_epoch?: number }>(
    await readAt(repo, r, `${PATHS.train}/history.json`, notes, options),
    `${PATHS.train}/history.json`,
    rev,
  );
  // Slices live in metrics.json, in the shape of lib/slices/shape.ts.
  const slices = parseSlices(raw, `${file('metrics.json')}@${rev}`);
  let monitor: RevisionPlotData['monitor'];
  if (r.env) {
    const rel = path.join('out', 'monitor', r.env, 'report.json');
    const text = await readFile(path.join(repo.root, rel), 'utf8').catch(() => undefined);
    const report = parseJson<{ features?: FeatureHistogram[] }>(text, rel, rev);
    if (report?.features?.length) monitor = { env: r.env, features: report.features };
    else notes.push(`${rel}: no monitoring report for ${r.env} (run lockstep monitor --env ${r.env})`);
  }
  return {
    ...r,
    metrics,
    ...(confusion ? { confusion } : {}),
    ...(history ? { history } : {}),
    slices,
    ...(monitor ? { monitor } : {}),
    notes,
  };
}
