/**
 * Experiments are git refs, like DVC's: `refs/exps/<name>` points at a commit whose parent is
 * the commit the experiment started from and whose tree is that commit's tree with the
 * experiment's params.yaml (and lockfile, when the pipeline ran). The commit message carries the
 * experiment's metadata as JSON. Nothing touches the workspace, the index or any branch.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LockstepError } from '../errors.ts';
import { gitRaw } from '../git.ts';
import { EXPERIMENT_REFS } from '../store/gc-roots.ts';

/** Experiments' ref namespace; gc keeps what they pin. */
export const EXP_REF_PREFIX = EXPERIMENT_REFS;

export interface ExperimentMeta {
  name: string;
  /** `run` (exp run) or `trial` (one tuning trial). */
  kind: 'run' | 'trial';
  /** Params set for this experiment (dotted key → value). */
  overrides: Record<string, unknown>;
  /** Metrics (evaluate metrics for runs; validation metrics for trials). */
  metrics: Record<string, number>;
  /** `ok`, `gate-failed`, `pruned`, `failed`. */
  status: string;
  created: string;
  /** Tuning run this trial belongs to. */
  tune?: string;
}

export interface Experiment extends ExperimentMeta {
  commit: string;
  baseline: string;
}

/** Experiment names become ref names: letters, digits, `-`, `_`, `.`. */
export function checkExperimentName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name) || name.includes('..')) {
    throw new LockstepError(
      `--name "${name}": not a valid experiment name. Use letters, digits, ".", "_" and "-".`,
    );
  }
  return name;
}

/**
 * Records an experiment: a commit on top of `base` replacing `files` (repository-relative
 * path → content), pointed at by `refs/exps/<name>` (replaced if it exists).
 */
export async function writeExperiment(
  root: string,
  base: string,
  files: Record<string, string>,
  meta: ExperimentMeta,
): Promise<string> {
  checkExperimentName(meta.name);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'lockstep-exp-index-'));
  // A private index: the user's staging area is never touched.
  const env = { ...process.env, GIT_INDEX_FILE: path.join(tmp, 'index') };
  try {
    await git(root, ['read-tree', base], env);
    for (const [rel, content] of Object.entries(files)) {
      const oid = await git(root, ['hash-object', '-w', '--stdin'], env, content);
      await git(root, ['update-index', '--add', '--cacheinfo', `100644,${oid},${rel}`], env);
    }
    const tree = await git(root, ['write-tree'], env);
    const message = `exp: ${meta.name}\n\n${JSON.stringify(meta, null, 2)}\n`;
    const commit = await git(root, ['commit-tree', tree, '-p', base, '-m', message], env);
    await git(root, ['update-ref', `${EXP_REF_PREFIX}${meta.name}`, commit], env);
    return commit;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Runs git with `env` (and `input` on stdin); resolves trimmed stdout, rejects with stderr. */
function git(root: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd: root,
      env,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve(out.trim())
        : reject(
            new LockstepError(`git ${args[0]} failed: ${err.trim().split('\n')[0]}. Check the repository.`),
          ),
    );
    if (input !== undefined) {
      child.stdin!.on('error', () => undefined); // git may exit first; its exit code tells
      child.stdin!.end(input);
    }
  });
}

/**
 * How errors name an experiment's committed lockfile (`artifacts.lock.yaml@refs/exps/<name>`, which
 * `git show` takes after a colon) and the fix they end with: the commit cannot be edited.
 */
export function experimentLockfileLabels(name: string): { label: string; repair: string } {
  return {
    label: `artifacts.lock.yaml@${EXP_REF_PREFIX}${name}`,
    repair: `The experiment's commit cannot be edited: remove it (lockstep exp remove ${name}) and run it again.`,
  };
}

/** Every experiment, newest first: one `for-each-ref` carries every ref's metadata. */
export async function listExperiments(root: string): Promise<Experiment[]> {
  const out = await gitRaw(root, [
    'for-each-ref',
    '--sort=-committerdate',
    '--format=%(refname)%00%(objectname)%00%(parent)%00%(contents:body)%1e',
    EXP_REF_PREFIX,
  ]);
  const exps: Experiment[] = [];
  for (const record of out.split('\x1e')) {
    const line = record.replace(/^\n/, '');
    if (!line) continue;
    const [ref, commit, parent, body] = line.split('\0') as [string, string, string, string];
    const name = ref.slice(EXP_REF_PREFIX.length);
    let meta: ExperimentMeta;
    try {
      meta = JSON.parse(body) as ExperimentMeta;
    } catch {
      meta = { name, kind: 'run', overrides: {}, metrics: {}, status: 'unknown', created: '' };
    }
    exps.push({ ...meta, name, commit, baseline: parent.split(' ')[0] ?? '' });
  }
  return exps;
}

/** One experiment by name. */
export async function getExperiment(root: string, name: string): Promise<Experiment> {
  const found = (await listExperiments(root)).find((e) => e.name === name);
  if (!found) {
    throw new LockstepError(`experiment "${name}": not found. List them with lockstep exp show.`);
  }
  return found;
}

/** Deletes experiments' refs; returns the names removed. */
export async function removeExperiments(root: string, names: string[]): Promise<string[]> {
  const all = await listExperiments(root);
  const removed: string[] = [];
  for (const name of names) {
    if (!all.some((e) => e.name === name)) {
      throw new LockstepError(`experiment "${name}": not found. List them with lockstep exp show.`);
    }
    await gitRaw(root, ['update-ref', '-d', `${EXP_REF_PREFIX}${name}`]);
    removed.push(name);
  }
  return removed;
}
