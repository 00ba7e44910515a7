/**
 * The temporary worktree an experiment runs in, made to compute exactly as the workspace would:
 * it shares the workspace's object cache and run-cache (so unchanged stages are restored), its
 * `node_modules`, and its configuration (`.lockstep/config.yaml` and `config.local.yaml`: the
 * remote and where each stage computes are this clone's settings, not part of the experiment,
 * and `.lockstep/` may well be git-ignored). The environment the pipeline runs with is the
 * caller's, with the paths in it that a relative value would point elsewhere from the worktree
 * (a local-directory remote, a credentials file) made absolute.
 */
import { existsSync } from 'node:fs';
import { copyFile, lstat, mkdir, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { LockstepError, UsageError } from '../errors.ts';
import type { Repo } from '../repo.ts';
import { readConfig } from '../config.ts';

/** Where every stage of an experiment computes (`--compute`), like `repro --compute`. */
export type ComputeOverride = 'local' | 'vertex';

/** Checks a `--compute` value; undefined stays undefined (the `compute:` config decides). */
export function parseComputeOverride(value: string | undefined): ComputeOverride | undefined {
  if (value === undefined || value === 'local' || value === 'vertex') return value;
  throw new UsageError(`--compute: unknown backend "${value}". Use --compute local or --compute vertex.`);
}

/** The configuration files copied into the worktree (the ones that exist). */
export const CONFIG_FILES = ['config.yaml', 'config.local.yaml'];

/**
 * Links the workspace's cache, run-cache and node_modules into the worktree `wt` and copies its
 * configuration there (see the module comment).
 */
export async function prepareExperimentWorkspace(repo: Repo, wt: Repo): Promise<void> {
  // A `.lockstep` the base commit holds as a symlink would have the links and copies below
  // written through it (into the workspace's own state, or wherever it points): the worktree
  // gets a directory of its own instead.
  const state = await lstat(wt.stateDir).catch(() => undefined);
  if (state?.isSymbolicLink()) await unlink(wt.stateDir);
  await mkdir(wt.stateDir, { recursive: true });
  await mkdir(repo.cacheDir, { recursive: true });
  await mkdir(path.join(repo.stateDir, 'runs'), { recursive: true });
  await symlink(repo.cacheDir, wt.cacheDir, 'dir');
  await symlink(path.join(repo.stateDir, 'runs'), path.join(wt.stateDir, 'runs'), 'dir');
  const modules = path.join(repo.root, 'node_modules');
  if (existsSync(modules)) await symlink(modules, path.join(wt.root, 'node_modules'), 'dir');
  // The workspace's copy wins over the base commit's: a compute or remote change not yet
  // committed applies to experiments as it does to `repro` here.
  for (const file of CONFIG_FILES) {
    const from = path.join(repo.stateDir, file);
    if (existsSync(from)) await copyFile(from, path.join(wt.stateDir, file));
  }
}

const isRelativePath = (url: string) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !path.isAbsolute(url);

/**
 * Refuses, in one line and before anything runs, an experiment that would use Google (a stage on
 * Vertex AI, by `compute` or the `compute:` config, or a gs:// remote) while
 * `GOOGLE_APPLICATION_CREDENTIALS` names a file that does not exist (relative to `cwd`, where
 * the caller set it): otherwise every stage, and every queued entry, fails later with the auth
 * library's error. An experiment that computes here with a local remote is not held up by it.
 */
export function checkGoogleCredentials(
  repo: Repo,
  compute: ComputeOverride | undefined,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): void {
  const creds = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (!creds) return;
  let remote = env.LOCKSTEP_REMOTE;
  let vertex = compute === 'vertex';
  try {
    const config = readConfig(repo);
    remote ||= config.remote ? config.remotes[config.remote]?.url : undefined;
    if (compute === undefined)
      vertex = Object.values(config.compute?.stages ?? {}).some((s) => s.backend === 'vertex');
  } catch (err) {
    // A broken config is the pipeline's to report, with its own message.
    if (!(err instanceof LockstepError)) throw err;
  }
  if (!vertex && !remote?.startsWith('gs://')) return;
  const file = path.resolve(cwd, creds);
  if (!existsSync(file))
    throw new LockstepError(
      `GOOGLE_APPLICATION_CREDENTIALS: no such file "${file}". Point it at a service account key file, or unset it to use Application Default Credentials.`,
    );
}

/**
 * The environment an experiment's pipeline runs with: `env` with a relative default remote
 * (resolved against the workspace root, as `repro` there resolves it) and a relative
 * `GOOGLE_APPLICATION_CREDENTIALS` (resolved against `cwd`, where the caller set it) made
 * absolute, plus `extra`.
 */
export function experimentEnv(
  repo: Repo,
  extra: Record<string, string>,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, ...extra };
  let remote = env.LOCKSTEP_REMOTE;
  if (!remote) {
    try {
      const config = readConfig(repo);
      remote = config.remote ? config.remotes[config.remote]?.url : undefined;
    } catch (err) {
      // A broken config is the pipeline's to report, with its own message.
      if (!(err instanceof LockstepError)) throw err;
    }
  }
  if (remote && isRelativePath(remote)) out.LOCKSTEP_REMOTE = path.resolve(repo.root, remote);
  const creds = env.GOOGLE_APPLICATION_CREDENTIALS;
  if (creds && !path.isAbsolute(creds)) out.GOOGLE_APPLICATION_CREDENTIALS = path.resolve(cwd, creds);
  return out;
}
