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
  core.debug(`lockstep ${args.join(' ')} (in ${options.cwd})`);
  const code = await main(['-C', options.cwd, ...args], output);
  return { code, stdout, stderr };
}

/** The last non-empty stderr line: the CLI's one-line error. */
export function lastError(result: CliResult): string {
  const lines = [...result.stderr, ...result.stdout].filter((l) => l.trim() !== '');
  return lines.at(-1)?.replace(/^lockstep: /, '') ?? `lockstep exited with code ${result.code}`;
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
