/**
 * Parsing a pull-request comment command (`/lockstep exp run -S train.lr=0.01 --name x`) with the
 * CLI's own parser: the text is split into words by string-argv (quotes only: no variables, no
 * command substitution, no operators; `;`, `|`, `$(...)`, `${{ }}` stay literal characters), then
 * parsed by the very `exp run` command `lockstep` registers, with its action replaced by a
 * capture. Only `-S/--set-param` and `-n/--name` are accepted from a comment; any other option
 * or a stray word is refused with the parser's reason. No shell ever sees the text.
 */
import { Command, CommanderError } from 'commander';
import { parseArgsStringToArgv } from 'string-argv';
import type { CliIO } from './main.ts';
import { register } from './commands/exp.ts';

export const COMMENT_PREFIX = '/lockstep';

export type ParsedComment = { ok: true; setParam: string[]; name?: string } | { ok: false; reason: string };

/** Parses the first line of `body` that starts with `/lockstep` (see the module comment). */
export async function parseExpComment(body: string): Promise<ParsedComment> {
  const line = body.split(/\r?\n/).find((l) => l.trim().startsWith(`${COMMENT_PREFIX} `));
  if (!line) return { ok: false, reason: `no line starting with "${COMMENT_PREFIX} exp run"` };
  const words = parseArgsStringToArgv(line.trim()).slice(1);
  if (words[0] !== 'exp' || words[1] !== 'run')
    return { ok: false, reason: `only "${COMMENT_PREFIX} exp run" can be requested from a comment` };
  const errors: string[] = [];
  const io: CliIO = { out: () => {}, err: (s) => errors.push(s), isTTY: false, cwd: process.cwd() };
  const program = new Command('lockstep').exitOverride().configureOutput({
    writeOut: () => {},
    writeErr: (s) => errors.push(s.trim()),
  });
  register(program, io);
  const run = program.commands.find((c) => c.name() === 'exp')!.commands.find((c) => c.name() === 'run')!;
  let captured: Record<string, unknown> | undefined;
  let extra: string[] = [];
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)])
    c.exitOverride();
  run.allowExcessArguments(false).action(function (this: Command, opts: Record<string, unknown>) {
    captured = opts;
    extra = this.args;
  });
  try {
    await program.parseAsync(words, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) return { ok: false, reason: errors[0] ?? err.message };
    return { ok: false, reason: (err as Error).message };
  }
  if (!captured) return { ok: false, reason: 'nothing to run' };
  if (extra.length > 0) return { ok: false, reason: `unexpected word "${extra[0]}"` };
  const allowed = new Set(['setParam', 'name']);
  const other = Object.keys(captured).find((k) => !allowed.has(k) && captured![k] !== undefined);
  if (other)
    return { ok: false, reason: `option "${other}" cannot be set from a comment (only -S and --name)` };
  const setParam = captured.setParam as string[];
  if (setParam.length === 0) return { ok: false, reason: 'no -S key=value given' };
  return { ok: true, setParam, ...(captured.name ? { name: String(captured.name) } : {}) };
}
