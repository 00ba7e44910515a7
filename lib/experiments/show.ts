/**
 * `exp show`: one table of HEAD, branches and experiments with their params (those that differ
 * anywhere) and metrics, sortable. Everything is read from git objects: no checkout.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { gitRaw, readFilesAtRevs } from '../git.ts';
import { parseLockfileQuick } from '../lockfile.ts';
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
    // Lockfiles read from history: the quick parser (same result, the exact error by fallback).
    const lock = parseLockfileQuick(text);
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

function flatParams(text: string | undefined): Record<string, unknown> {
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
  /** Pulled experiments' origins (see origins.ts). */
  origins?: Record<string, ExperimentOrigin>;
  /**
   * A file caching each commit's flattened params (commits never change, so entries never go
   * stale); default none. The CLI keeps it in `.lockstep/exp-show-cache.json`.
   */
  cacheFile?: string;
}

interface ParamsCache {
  version: 1;
  params: Record<string, Record<string, unknown>>;
}

function readParamsCache(file: string | undefined): ParamsCache {
  if (file) {
    try {
      const c = JSON.parse(fs.readFileSync(file, 'utf8')) as ParamsCache;
      if (c.version === 1 && c.params && typeof c.params === 'object') return c;
    } catch {
      // Missing or unreadable: rebuilt below.
    }
  }
  return { version: 1, params: {} };
}

/**
 * Collects the rows (HEAD, local branches, experiments). Every params.yaml and lockfile is read
 * with one `git cat-file --batch`, and a lockfile shared by many rows (tuning trials share their
 * base's) is parsed once, so a thousand experiments cost a few processes, not thousands.
 */
export async function collectRows(root: string, options: CollectOptions = {}): Promise<ExpRow[]> {
  const head = (
    await gitRaw(root, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']).catch(() => '')
  ).trim();
  const branches = (
    await gitRaw(root, ['for-each-ref', '--format=%(refname:short)%00%(objectname)', 'refs/heads/'])
  )
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split('\0') as [string, string]);
  const bases = options.revs ?? (head ? [head] : []);
  const exps = (await listExperiments(root)).filter((e) => options.allCommits || bases.includes(e.baseline));
  const commits = [
    ...new Set([...(head ? [head] : []), ...branches.map(([, c]) => c), ...exps.map((e) => e.commit)]),
  ];
  const cache = readParamsCache(options.cacheFile);
  const cached = cache.params;
  const needsLock = new Set([
    ...(head ? [head] : []),
    ...branches.map(([, c]) => c),
    ...exps.filter((e) => e.kind !== 'trial' && Object.keys(e.metrics).length === 0).map((e) => e.commit),
  ]);
  const files = await readFilesAtRevs(
    root,
    commits.flatMap((c): Array<[string, string]> => [
      ...(cached[c] ? [] : [[c, 'params.yaml'] as [string, string]]),
      ...(needsLock.has(c) ? [[c, 'artifacts.lock.yaml'] as [string, string]] : []),
    ]),
  );
  const metricsCache = new Map<string, Record<string, number>>();
  const metricsAt = (commit: string) => {
    const text = files.get(`${commit}:artifacts.lock.yaml`);
    if (text === undefined) return {};
    let m = metricsCache.get(text);
    if (!m) metricsCache.set(text, (m = metricsFromLock(text)));
    return m;
  };
  let added = 0;
  const paramsAt = (commit: string) => {
    let p = cache.params[commit];
    if (!p) {
      cache.params[commit] = p = flatParams(files.get(`${commit}:params.yaml`));
      added++;
    }
    return p;
  };
  const rows: ExpRow[] = [];
  if (head) {
    rows.push({
      name: 'HEAD',
      kind: 'workspace',
      commit: head,
      status: '',
      params: paramsAt(head),
      metrics: metricsAt(head),
    });
  }
  for (const [name, commit] of branches) {
    rows.push({
      name,
      kind: 'branch',
      commit,
      status: '',
      params: paramsAt(commit),
      metrics: metricsAt(commit),
    });
  }
  for (const e of exps) {
    rows.push({
      name: e.name,
      kind: e.kind,
      commit: e.commit,
      status: e.status,
      baseline: e.baseline,
      origin: originOf(options.origins ?? {}, e),
      params: paramsAt(e.commit),
      // exp run records the lockfile's metrics in the experiment's metadata: parse only without.
      metrics: e.kind === 'trial' || Object.keys(e.metrics).length > 0 ? e.metrics : metricsAt(e.commit),
    });
  }
  if (added > 0 && options.cacheFile) {
    // Best effort: a cache that cannot be written only costs the parse next time.
    try {
      const tmp = `${options.cacheFile}.${process.pid}.tmp`;
      fs.mkdirSync(path.dirname(options.cacheFile), { recursive: true });
      fs.writeFileSync(tmp, JSON.stringify(cache));
      fs.renameSync(tmp, options.cacheFile);
    } catch {
      // ignored, see above
    }
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
