/**
 * The body of the actions that run one whole CLI command (promote, canary, monitor): run it
 * in-process, set `ok`/`output`, put the output in the job summary, fail the step on failure.
 */
import * as core from '@actions/core';
import { lastError, runLockstep, type CliResult } from './cli.ts';

export interface CommandActionResult extends CliResult {
  /** Markdown already written to the job summary. */
  summary: string;
}

/** A fenced block that cannot be closed early by the text inside it. */
export function fence(text: string): string {
  const ticks = '`'.repeat(Math.max(3, ...[...text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
  return `${ticks}text\n${text}\n${ticks}`;
}

/**
 * Runs `lockstep <args>` in `cwd` and reports it. Does not call setFailed: the caller decides
 * (deploy still has a deployment status to write first).
 */
export async function runCommand(title: string, args: string[], cwd: string): Promise<CommandActionResult> {
  const result = await runLockstep(args, { cwd });
  const failed = result.code !== 0;
  const text = [...result.stdout, ...result.stderr].join('\n').trim();
  core.setOutput('ok', String(!failed));
  core.setOutput('output', result.stdout.join('\n'));
  const summary = [
    `## lockstep: ${title} ${failed ? '❌ failed' : '✅'}`,
    `\`lockstep ${args.join(' ')}\``,
    ...(failed ? [`> ${lastError(result)}`] : []),
    text ? fence(text) : '_No output._',
  ].join('\n\n');
  await core.summary.addRaw(summary + '\n').write();
  return { ...result, summary };
}
