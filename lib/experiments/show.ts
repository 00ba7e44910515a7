/**
 * `exp show`: one table of HEAD, branches and experiments with their params (those that differ
 * anywhere) and metrics, sortable. Everything is read from git objects: no checkout.
 */
import { simpleGit } from 'simple-git';
import { parse as parseYaml } from 'yaml';
import { readFileAtRev } from '../git.ts';
import { parseLockfile } from '../lockfile.ts';
import { flattenParams } from '../pipeline/diff.ts';
import { listExperiments } from './store.ts';
import { originOf, type ExperimentOrigin } from './origins.ts';

export interface ExpRow {
  name: string;
  /** `workspace`, `branch`, `run`, `trial`. */
  kind: string;
  commit: string;
  status: string;
  /** Experiments: the commit they started from. */
  baseline?: string;
  /** Experiments: `local`, or the git remote they were pulled from. */
  origin?: string;
  params: Record<string, unknown>;
  metrics: Record<string, number>;
}

function metricsFromLock(text: string | undefined): Record<string, number> {
  if (!text) return {};
  try {
    const lock = parseLockfile(text);
    const out: Record<string, number> = {};
    for (const [stage, entry] of Object.entries(lock.stages)) {
      for (const [k, v] of Object.entries(entry.metrics ?? {}))
        out[stage === 'evaluate' ? k : `${stage}.${k}`] = v;
    }
    return out;
  } catch {
    return {};
  }
}

async function paramsAt(root: string, rev: string): Promise<Record<string, unknown>> {
  const text = await readFileAtRev(root, rev, 'params.yaml');
  try {
    return flattenParams(text ? (parseYaml(text) ?? {}) : {});
  } catch {
    return {};
  }
}

export interface CollectOptions {
  /** Experiments of every base commit (default: only those started from HEAD, as DVC). */
  allCommits?: boolean;
  /** Experiments started from these commits (full ids) instead of HEAD. */
  revs?: string[];
  /** Pulled experiments' origins (see share.ts). */
  origins?: Record<string, ExperimentOrigin>;
}

/** Collects the rows (HEAD, local branches, experiments). */
export async function collectRows(root: string, options: CollectOptions = {}): Promise<ExpRow[]> {
  const git = simpleGit(root);
  const rows: ExpRow[] = [];
  const head = (await git.raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']).catch(() => '')).trim();
  if (head) {
    rows.push({
      name: 'HEAD',
      kind: 'workspace',
      commit: head,
      status: '',
      params: await paramsAt(root, head),
      metrics: metricsFromLock(await readFileAtRev(root, head, 'artifacts.lock.yaml')),
    });
  }
  const branches = (
    await git.raw(['for-each-ref', '--format=%(refname:short)%00%(objectname)', 'refs/heads/'])
  )
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\0'));
  for (const [name, commit] of branches) {
    rows.push({
      name,
      kind: 'branch',
      commit,
      status: '',
      params: await paramsAt(root, commit),
      metrics: metricsFromLock(await readFileAtRev(root, commit, 'artifacts.lock.yaml')),
    });
  }
  const bases = options.revs ?? (head ? [head] : []);
  for (const e of await listExperiments(root)) {
    if (!options.allCommits && !bases.includes(e.baseline)) continue;
    const lockMetrics = metricsFromLock(await readFileAtRev(root, e.commit, 'artifacts.lock.yaml'));
    rows.push({
      name: e.name,
      kind: e.kind,
      commit: e.commit,
      status: e.status,
      baseline: e.baseline,
      origin: originOf(options.origins ?? {}, e),
      params: await paramsAt(root, e.commit),
      metrics: e.kind === 'trial' ? e.metrics : { ...lockMetrics, ...e.metrics },
    });
  }
  return rows;
}

export interface ShowOptions {
  /** Metric to sort by (rows without it last). */
  sort?: string;
  ascending?: boolean;
  /** Metric columns (default: headline metrics present in any row). */
  metrics?: string[];
  /** Param columns (default: params that differ between rows). */
  params?: string[];
}

const HEADLINE = ['accuracy', 'f1_macro', 'mcc', 'val_f1_macro', 'val_accuracy', 'val_loss'];

/** Sorts rows and picks the columns. */
export function shapeTable(
  rows: ExpRow[],
  options: ShowOptions = {},
): { params: string[]; metrics: string[]; rows: ExpRow[] } {
  const metricCols = options.metrics ?? HEADLINE.filter((m) => rows.some((r) => r.metrics[m] !== undefined));
  const allParams = [...new Set(rows.flatMap((r) => Object.keys(r.params)))].sort();
  const paramCols =
    options.params ?? allParams.filter((k) => new Set(rows.map((r) => JSON.stringify(r.params[k]))).size > 1);
  let sorted = rows;
  if (options.sort) {
    const key = options.sort;
    const dir = options.ascending ? 1 : -1;
    sorted = [...rows].sort((a, b) => {
      const va = a.metrics[key];
      const vb = b.metrics[key];
      if (va === undefined && vb === undefined) return 0;
      if (va === undefined) return 1;
      if (vb === undefined) return -1;
      return dir * (va - vb);
    });
  }
  return { params: paramCols, metrics: metricCols, rows: sorted };
}
