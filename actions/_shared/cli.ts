/**
 * Runs a `lockstep` command in-process through `main()` from the CLI (no child process, no tsx
 * at run time), capturing its output while echoing it to the job log.
 */
import * as core from '@actions/core';
import { main } from '../../lib/cli/main.ts';
import type { Output } from '../../lib/output.ts';

export interface CliResult {
  /** Exit code main() returned: 0 ok, 1 failure, 2 usage. */
  code: number;
  stdout: string[];
  stderr: string[];
}

let tsxRegistered = false;

/**
 * The bundle holds the CLI and the runner, but the pipeline module (stages/pipeline.ts) is
 * imported at run time from the checked-out source: register the TypeScript loader once.
 */
async function registerTsx(): Promise<void> {
  if (tsxRegistered) return;
  const { register } = await import('tsx/esm/api');
  register();
  tsxRegistered = true;
}

/**
 * Runs `lockstep -C <cwd> <args...>`. Output lines go to the log (stdout as info, stderr as
 * info too: the CLI writes progress there) and are returned.
 */
export async function runLockstep(
  args: string[],
  options: { cwd: string; echo?: boolean },
): Promise<CliResult> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const echo = options.echo ?? true;
  const output: Output = {
    isTTY: false,
    out(line) {
      stdout.push(line);
      if (echo) core.info(line);
    },
    err(line) {
      stderr.push(line);
      if (echo) core.info(line);
    },
  };
  await registerTsx();
  core.debug(`lockstep ${args.join(' ')} (in ${options.cwd})`);
  const code = await main(['-C', options.cwd, ...args], output);
  return { code, stdout, stderr };
}

/**
 * The CLI's one-line error: the last `lockstep: ...` line on stderr, else the last stderr line
 * (commander's usage errors), else the last stdout line.
 */
export function lastError(result: CliResult): string {
  const split = (chunks: string[]) =>
    chunks
      .flatMap((c) => c.split('\n'))
      // Commander follows a usage error with a hint line; the error is the line before it.
      .filter((l) => l.trim() !== '' && !l.startsWith('(run with --help'));
  const stderr = split(result.stderr);
  const line =
    stderr.filter((l) => l.startsWith('lockstep: ')).at(-1) ?? stderr.at(-1) ?? split(result.stdout).at(-1);
  return line?.replace(/^lockstep: /, '') ?? `lockstep exited with code ${result.code}`;
}

/** Parses the stdout of a `--json` command; undefined when it is not JSON. */
export function parseJsonOutput(result: CliResult): unknown {
  const text = result.stdout.join('\n').trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
