/**
 * `exp run`: the pipeline with some params changed, without touching the workspace. It runs in a
 * temporary worktree of HEAD that shares this repository's object cache and run-cache, so every
 * stage upstream of the change is restored instead of re-run, and an experiment identical to an
 * earlier one (or to a branch's run) re-runs nothing. The result is kept as `refs/exps/<name>`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gitClient, unlessGitMissing } from '../git-client.ts';
import { parseDocument } from 'yaml';
import { InterruptedError, LockstepError, UsageError } from '../errors.ts';
import { parseLockfile } from '../lockfile.ts';
import { parseParams } from '../params.ts';
import type { Output } from '../output.ts';
import { repoAt, type Repo } from '../repo.ts';
import { registerWriter } from '../store/in-flight.ts';
import { setParamsValues } from './params-edit.ts';
import { checkExperimentName, writeExperiment, type Experiment } from './store.ts';
import { EXPERIMENT_LOG_ENV, logExperimentRun, trainDirOf } from './vertex-record.ts';
import {
  checkGoogleCredentials,
  experimentEnv,
  parseComputeOverride,
  prepareExperimentWorkspace,
  type ComputeOverride,
} from './workspace.ts';

/** Parses `-S key=value` flags; values are YAML scalars (`3`, `0.01`, `true`, `mlp`). */
export function parseOverrides(pairs: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-S "${pair}": expected key=value, e.g. -S train.lr=0.003.`);
    const key = pair.slice(0, eq).trim();
    const raw = pair.slice(eq + 1);
    const doc = parseDocument(raw);
    out[key] = doc.errors.length ? raw : doc.toJS();
  }
  return out;
}

/**
 * Applies dotted overrides to params.yaml text, changing only those values (everything else
 * stays byte for byte, see params-edit.ts), and validates the
 * result with the params schema (errors name the key).
 */
export function applyOverrides(
  text: string,
  overrides: Record<string, unknown>,
  file = 'params.yaml',
): string {
  const out = setParamsValues(text, overrides);
  parseParams(out, `${file} (with ${Object.keys(overrides).join(', ')})`);
  return out;
}

export interface ExpRunOptions {
  overrides: Record<string, unknown>;
  name?: string;
  out?: Output;
  /** Pipeline module for `repro --pipeline` (tests). */
  pipeline?: string;
  kind?: 'run' | 'trial';
  /** Commit to start from (default HEAD; the queue pins the commit an entry was queued at). */
  base?: string;
  /** params.yaml text to run with, overrides already applied (default: the workspace's). */
  paramsText?: string;
  /** Called with the temporary worktree's path before anything runs in it (the queue records it). */
  onWorktree?: (dir: string) => void | Promise<void>;
  /**
   * Where every stage computes, as `repro --compute` (default: the workspace's `compute:`
   * config, which the worktree gets a copy of).
   */
  compute?: ComputeOverride;
}

export interface ExpRunResult extends Experiment {
  /** Stage name → `ran`, `restored`, `skipped`, `failed`, `not run`. */
  stages: Record<string, string>;
}

interface Running {
  child: ChildProcess;
  interrupted?: NodeJS.Signals;
}
/** The repro children running now (a queue runs several): one signal listener serves them all. */
const running = new Set<Running>();
function onSignal(signal: NodeJS.Signals): void {
  for (const r of running) {
    r.interrupted ??= signal;
    r.child.kill(signal);
  }
}
function watchSignals(r: Running): void {
  if (running.size === 0) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  running.add(r);
}
function unwatchSignals(r: Running): void {
  running.delete(r);
  if (running.size === 0) {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

/**
 * Runs `lockstep <args>` in the worktree. A SIGINT or SIGTERM this process gets meanwhile is
 * passed on to the child and waited for (`interrupted`): repro then cancels the Vertex AI jobs
 * it submitted and stops, where Node's default would exit here and leave the child and its
 * jobs running, unowned.
 */
function spawnRepro(
  dir: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  out?: Output,
): Promise<{
  code: number;
  signal?: NodeJS.Signals;
  stdout: string;
  stderr: string;
  interrupted?: NodeJS.Signals;
}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(dir, 'bin', 'lockstep.mjs'), ...args], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: a Ctrl-C in the terminal reaches it once, passed on from here
      // (twice, repro would take the second as "exit at once" and leave its jobs running).
      detached: true,
    });
    const entry = { child, interrupted: undefined as NodeJS.Signals | undefined };
    watchSignals(entry);
    const unlisten = () => unwatchSignals(entry);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      out?.err(d.toString().trimEnd());
    });
    child.on('error', (err) => {
      unlisten();
      reject(err);
    });
    child.on('close', (code, signal) => {
      unlisten();
      resolve({
        code: code ?? 1,
        ...(signal ? { signal } : {}),
        stdout,
        stderr,
        interrupted: entry.interrupted,
      });
    });
  });
}

/** Longest reason kept: the line goes into a message and into the queue entry's file. */
const MAX_REASON_CHARS = 300;
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g;

/**
 * One line saying why a `repro` child failed. A Node crash (its report ends `Node.js v20...`, so
 * the last line says nothing) gives the value it threw: an error's first lines up to its stack,
 * a thrown string or object as Node printed it (on one line), the reason of an unhandled
 * rejection. Otherwise the child's own error line (`lockstep: ...`), else its last line of
 * output; a stage's earlier log line that happens to start with "Error:" is not the failure.
 * The signal that killed it comes first, and the exit code stands in for no output. Colours,
 * carriage returns and a line too long to read are taken out.
 */
export function failureReason(res: { code: number; signal?: NodeJS.Signals; stderr: string }): string {
  const raw = res.stderr
    .replace(ANSI, '')
    .split('\n')
    // A progress line redrawn with carriage returns shows what came after the last one.
    .map((l) => l.replace(/\r+$/, ''))
    .map((l) => l.slice(l.lastIndexOf('\r') + 1).trimEnd());
  const crashed = raw.some((l) => NODE_VERSION_LINE.test(l));
  const lines = raw.filter((l) => l.trim() !== '' && !isTrailer(l));
  let last: string | undefined;
  if (crashed) last = thrownValue(raw);
  if (last === undefined) {
    const error = crashed
      ? lines.findLast((l) => /^(?:[A-Z][\w$]*)?Error(?: \[[^\]]+\])?: /.test(l))
      : res.signal
        ? undefined
        : lines.findLast((l) => l.startsWith('lockstep: '));
    last = error ?? lines.findLast((l) => !/^\s+at /.test(l) && !/^\s*[\^~]+$/.test(l) && !/^[{}]/.test(l));
  }
  const line = last === undefined ? undefined : cut(last.trim());
  if (res.signal) return `killed by ${res.signal}${line ? `; its last line: ${line}` : ', no output'}`;
  return line || `exit code ${res.code}, no output`;
}

/** The closing line of a Node crash report. */
const NODE_VERSION_LINE = /^Node\.js v\d/;

/** A line Node adds after what was thrown: its version, or its hint about --trace flags. */
function isTrailer(line: string): boolean {
  return NODE_VERSION_LINE.test(line) || /^\(Use `node --trace-/.test(line);
}

function cut(line: string): string {
  return line.length > MAX_REASON_CHARS ? `${line.slice(0, MAX_REASON_CHARS - 1)}\u2026` : line;
}

/**
 * What a Node crash report says was thrown: after its `<file>:<line>`, source line and caret, up
 * to the stack (an error) or to the report's end (a string, an object), on one line.
 */
function thrownValue(raw: string[]): string | undefined {
  let caret = -1;
  for (let i = 0; i < raw.length; i++) {
    if (!/^\s*\^+$/.test(raw[i]!)) continue;
    const before = raw.slice(0, i).filter((l) => l.trim() !== '');
    if (before.length >= 2 && /:\d+$/.test(before.at(-2)!)) caret = i;
  }
  if (caret < 0) return undefined;
  const block: string[] = [];
  for (const l of raw.slice(caret + 1)) {
    if (isTrailer(l)) break;
    block.push(l);
  }
  while (block.length > 0 && block[0]!.trim() === '') block.shift();
  const stack = block.findIndex((l) => /^\s+at /.test(l));
  const value = (stack >= 0 ? block.slice(0, stack) : block)
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
  if (value === '') return undefined;
  const rejected = /^UnhandledPromiseRejection: .*The promise rejected with the reason "(.*)"\.$/.exec(value);
  return rejected ? `unhandled rejection: ${rejected[1]}` : value;
}

/** A stable default name: the same base and overrides give the same name (re-runs replace it). */
export function defaultExperimentName(base: string, overrides: Record<string, unknown>): string {
  const keys = Object.keys(overrides).sort();
  const h = createHash('sha256')
    .update(base + JSON.stringify(keys.map((k) => [k, overrides[k]])))
    .digest('hex');
  return `exp-${h.slice(0, 8)}`;
}

/** HEAD's commit; a LockstepError before the first commit (or without git: GIT_NOT_FOUND). */
export async function headCommit(repo: Repo): Promise<string> {
  const git = gitClient(repo.root);
  const base = (
    await git.raw(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']).catch(unlessGitMissing(''))
  ).trim();
  if (!base) throw new LockstepError('HEAD: no commit yet. Commit the pipeline before running experiments.');
  return base;
}

/** The workspace's params.yaml with `overrides` applied (validated; see applyOverrides). */
export async function experimentParams(repo: Repo, overrides: Record<string, unknown>): Promise<string> {
  return applyOverrides(await readFile(repo.paramsPath, 'utf8').catch(() => ''), overrides);
}

interface ReproReport {
  ok: boolean;
  stages: { name: string; status: string }[];
  failures?: { stage: string; message: string; skipped: string[] }[];
  refused: unknown[];
}

/** The run's report from `repro --json` output, or undefined when repro printed none. */
function parseReport(stdout: string): ReproReport | undefined {
  try {
    const report = JSON.parse(stdout) as ReproReport;
    return Array.isArray(report?.stages) ? report : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs one experiment (see the module comment). Its ref is written only when every stage ran
 * (or was restored): a failed stage (a Vertex AI job that failed, a crash) records nothing and
 * throws, so no experiment ever pins a lockfile with stages missing.
 */
export async function runExperiment(repo: Repo, options: ExpRunOptions): Promise<ExpRunResult> {
  const compute = parseComputeOverride(options.compute);
  checkGoogleCredentials(repo, compute);
  const git = gitClient(repo.root);
  const base = options.base ?? (await headCommit(repo));
  const name = checkExperimentName(options.name ?? defaultExperimentName(base, options.overrides));
  // The workspace's params (committed or not) are the starting point, as with `dvc exp run`.
  const paramsText = options.paramsText ?? (await experimentParams(repo, options.overrides));
  // Until its ref exists nothing pins what the run writes to the shared cache: gc keeps it.
  const release = registerWriter(repo, `exp run ${name}`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'lockstep-exp-'));
  const dir = path.join(tmp, 'wt');
  try {
    await options.onWorktree?.(tmp);
    await git.raw(['worktree', 'add', '--quiet', '--detach', dir, base]);
    const wt = repoAt(dir);
    await prepareExperimentWorkspace(repo, wt);
    await writeFile(wt.paramsPath, paramsText);
    const args = [
      'repro',
      '--json',
      ...(options.pipeline ? ['--pipeline', options.pipeline] : []),
      ...(compute ? ['--compute', compute] : []),
    ];
    options.out?.err(
      `exp ${name}: running in a worktree of ${base.slice(0, 8)}${compute ? ` (--compute ${compute})` : ''}`,
    );
    // The experiment is logged to Vertex AI once, below, under its own name.
    const env = experimentEnv(repo, { CI: 'true', [EXPERIMENT_LOG_ENV]: 'off' });
    const res = await spawnRepro(dir, args, env, options.out);
    if (res.interrupted) {
      throw new InterruptedError(
        `exp ${name}: interrupted (${res.interrupted}): its stages stopped and their Vertex AI jobs were cancelled; nothing was recorded. Run it again.`,
        res.interrupted,
      );
    }
    const report = parseReport(res.stdout);
    if (!report) {
      throw new LockstepError(
        `exp ${name}: the pipeline failed (${failureReason(res)}). Fix it, then run the experiment again.`,
      );
    }
    const lockText = await readFile(wt.lockfilePath, 'utf8').catch(() => '');
    const logRun = async (failed: boolean) => {
      try {
        await logExperimentRun(
          repo,
          { run: name, paramsText, lockText, trainDir: trainDirOf(dir), failed },
          { out: options.out },
        );
      } catch (err) {
        // The experiment is kept in git either way; say why the console does not show it.
        options.out?.err((err as Error).message);
      }
    };
    const failure = report.failures?.[0];
    const notRun = report.stages.filter((s) => s.status === 'not run').map((s) => s.name);
    const failedStage = failure?.stage ?? report.stages.find((s) => s.status === 'failed')?.name;
    if (failedStage !== undefined || notRun.length > 0) {
      await logRun(true);
      const what =
        failedStage !== undefined
          ? `stage ${failedStage} failed${failure ? ` (${failure.message.split('\n')[0]})` : ''}`
          : `the run stopped before ${notRun.join(', ')}`;
      throw new LockstepError(
        `exp ${name}: ${what}; nothing was recorded. Fix it, then run the experiment again.`,
      );
    }
    const lock = parseLockfile(lockText);
    const metrics: Record<string, number> = {};
    for (const [stage, entry] of Object.entries(lock.stages)) {
      for (const [k, v] of Object.entries(entry.metrics ?? {}))
        metrics[stage === 'evaluate' ? k : `${stage}.${k}`] = v;
    }
    const meta = {
      name,
      kind: options.kind ?? 'run',
      overrides: options.overrides,
      metrics,
      status: report.refused.length > 0 ? 'gate-failed' : 'ok',
      created: new Date().toISOString(),
    } as const;
    const commit = await writeExperiment(
      repo.root,
      base,
      { 'params.yaml': paramsText, 'artifacts.lock.yaml': lockText },
      { ...meta },
    );
    await logRun(false);
    return {
      ...meta,
      commit,
      baseline: base,
      stages: Object.fromEntries(report.stages.map((s) => [s.name, s.status])),
    };
  } finally {
    await git.raw(['worktree', 'remove', '--force', dir]).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
    await git.raw(['worktree', 'prune']).catch(() => undefined);
    release();
  }
}
