/**
 * Runs a bundled action the way the runner does: `node <bundle>` with INPUT_* (action.yml
 * defaults filled in like the runner fills them), GITHUB_OUTPUT, GITHUB_STEP_SUMMARY,
 * GITHUB_EVENT_PATH (a real webhook payload) and GITHUB_API_URL.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';

const exec = promisify(execFile);
export const repoRoot = path.resolve(import.meta.dirname, '../..');

/**
 * Bundles every action into a fresh directory under node_modules/.cache (inside the repository,
 * so the bundles' external packages resolve from node_modules as they do in a job).
 */
export async function buildBundles(): Promise<string> {
  const cacheDir = path.join(repoRoot, 'node_modules/.cache');
  await import('node:fs/promises').then((fs) => fs.mkdir(cacheDir, { recursive: true }));
  const outdir = await mkdtemp(path.join(cacheDir, 'lockstep-actions-'));
  await exec(process.execPath, [path.join(repoRoot, 'actions/build.mjs'), '--outdir', outdir], {
    cwd: repoRoot,
  });
  return outdir;
}

export interface RunActionOptions {
  /** Directory the step runs in (GITHUB_WORKSPACE). */
  cwd: string;
  inputs?: Record<string, string>;
  eventName: string;
  /** The webhook payload written to GITHUB_EVENT_PATH. */
  event: Record<string, any>;
  apiUrl?: string;
  token?: string;
  env?: Record<string, string>;
}

export interface ActionRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
}

/** Parses the GITHUB_OUTPUT file (`name<<delimiter` blocks as @actions/core writes them). */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<=]+)<<(.+)$/.exec(lines[i]);
    if (m) {
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
      outputs[m[1]] = value.join('\n');
    } else if (lines[i].includes('=')) {
      const at = lines[i].indexOf('=');
      outputs[lines[i].slice(0, at)] = lines[i].slice(at + 1);
    }
  }
  return outputs;
}

/** The INPUT_* variables for an action: declared defaults, then `inputs` on top. */
export async function inputEnv(
  name: string,
  inputs: Record<string, string>,
  token: string,
): Promise<Record<string, string>> {
  const meta = parse(await readFile(path.join(repoRoot, 'actions', name, 'action.yml'), 'utf8')) as {
    inputs?: Record<string, { default?: unknown }>;
  };
  const env: Record<string, string> = {};
  for (const [key, def] of Object.entries(meta.inputs ?? {})) {
    if (def.default === undefined) continue;
    env[`INPUT_${key.toUpperCase()}`] = String(def.default).replace('${{ github.token }}', token);
  }
  for (const [key, value] of Object.entries(inputs)) env[`INPUT_${key.toUpperCase()}`] = value;
  return env;
}

/** Runs `node <bundleDir>/<name>/index.js` and collects exit code, outputs and summary. */
export async function runAction(
  bundleDir: string,
  name: string,
  options: RunActionOptions,
): Promise<ActionRun> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), `action-${name}-`));
  const files = {
    output: path.join(tmp, 'output'),
    summary: path.join(tmp, 'summary.md'),
    event: path.join(tmp, 'event.json'),
  };
  await writeFile(files.output, '');
  await writeFile(files.summary, '');
  await writeFile(files.event, JSON.stringify(options.event));
  const token = options.token ?? 'ghs_faketoken';
  const repository = options.event.repository?.full_name ?? 'Codertocat/Hello-World';
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? tmp,
    ...(await inputEnv(name, options.inputs ?? {}, token)),
    GITHUB_ACTIONS: 'true',
    CI: 'true',
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_EVENT_PATH: files.event,
    GITHUB_EVENT_NAME: options.eventName,
    GITHUB_REPOSITORY: repository,
    GITHUB_API_URL: options.apiUrl ?? 'http://127.0.0.1:9',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '4242',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_SHA: options.event.after ?? options.event.pull_request?.head?.sha ?? '0'.repeat(40),
    GITHUB_REF: options.event.ref ?? 'refs/heads/main',
    GITHUB_WORKSPACE: options.cwd,
    RUNNER_TEMP: tmp,
    ...options.env,
  };
  const bundle = path.join(bundleDir, name, 'index.js');
  const child = await exec(process.execPath, [bundle], { cwd: options.cwd, env, maxBuffer: 16 << 20 }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (err: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof err.code === 'number' ? err.code : 1,
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? String(err),
    }),
  );
  return {
    ...child,
    outputs: parseOutputFile(await readFile(files.output, 'utf8')),
    summary: await readFile(files.summary, 'utf8'),
  };
}
