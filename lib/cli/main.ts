/**
 * The `lockstep` command table. Each command lives in `lib/cli/commands/<name>.ts` and exports
 * `register(program, io)`, which declares its options and lazily imports its implementation,
 * so `lockstep --help` stays fast. Only this file decides exit codes.
 */
import { Command, CommanderError } from 'commander';
import { ConfigProblems, LockstepError, toOneLine } from '../errors.ts';
import { processOutput, type Output } from '../output.ts';

/** Names of the command modules under ./commands, in the order `--help` lists them. */
export const COMMANDS = [
  'start',
  'add',
  'repro',
  'status',
  'lock',
  'push',
  'pull',
  'gc',
  'params',
  'metrics',
  'plots',
  'registry',
  'lineage',
  'verify',
  'provenance',
  'promote',
  'history',
  'rollback',
  'serve',
  'predict',
  'endpoint',
  'canary',
  'monitor',
  'batch-predict',
  'exp',
  'tune',
  'ui',
  'job',
] as const;

export interface CliIO extends Output {
  /** Working directory the command was started in (`-C` overrides it). */
  cwd: string;
}

type Registrar = (program: Command, io: CliIO) => void;
type CommandName = (typeof COMMANDS)[number];

/** Root options taking a value, as `buildProgram` declares them. */
const VALUE_OPTIONS = new Set(['-C', '--cwd']);

/**
 * The command `argv` runs when that is plain to see: its first word after root options that
 * take a value (`-C <dir>`, `--cwd=<dir>`) names a command of COMMANDS. Undefined for anything
 * else (no command, `help`, an unknown word, `--help` or `--` ahead of the command), which needs
 * the whole command table for its help or suggestion.
 */
export function invokedCommand(argv: readonly string[]): CommandName | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (VALUE_OPTIONS.has(arg)) i++;
    else if (arg.startsWith('--cwd=') || (arg.startsWith('-C') && !arg.startsWith('--'))) continue;
    else if (arg.startsWith('-')) return undefined;
    else return (COMMANDS as readonly string[]).includes(arg) ? (arg as CommandName) : undefined;
  }
  return undefined;
}

/**
 * Builds the commander program. With `argv`, a run whose command is plain to see
 * (invokedCommand) registers that command alone: loading the other command modules would cost
 * every command tens of milliseconds, and a subcommand's parsing, help and errors do not depend
 * on its siblings. Otherwise every command is registered.
 */
export async function buildProgram(io: CliIO, argv?: readonly string[]): Promise<Command> {
  const program = new Command('lockstep')
    .description(
      'GitOps for one production ML system: versioned artifacts, cached pipeline, promotion, canaries.',
    )
    .option('-C, --cwd <dir>', 'run as if started in <dir>')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
    });
  program.hook('preAction', (root) => {
    const dir = root.opts().cwd as string | undefined;
    if (dir) io.cwd = dir;
  });
  const only = argv && invokedCommand(argv);
  const modules = await Promise.all(
    (only ? [only] : COMMANDS).map(
      async (name) => (await import(`./commands/${name}.ts`)) as { register: Registrar },
    ),
  );
  for (const mod of modules) mod.register(program, io);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/** How long the check of git after a failed command waits for `git --version`. */
const GIT_CHECK_TIMEOUT_MS = 5_000;

/**
 * A command that failed inside git's answers (an internal error from parsing them, or an error
 * that names git) while the git on PATH starts but does not work (a shim whose target is gone
 * exits 127 saying nothing; a stray script prints something else) failed because of that git:
 * its own message ("unknown revision HEAD", "Cannot read properties of undefined") would send the
 * user the wrong way. Checked only once a command has failed, so no command pays for it.
 */
async function brokenGitInstead(err: unknown, cwd: string): Promise<LockstepError | undefined> {
  if (err instanceof ConfigProblems) return undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof LockstepError) {
    // A usage error (exit 2) or a stop by a signal is not git's doing, and neither is a message
    // that only names a path called git (~/git/proj, .git).
    if (err.exitCode !== 1 || !/(?<![\w./\\-])git(?![\w/\\-])/i.test(message)) return undefined;
  } else if (err instanceof Error) {
    // A system error (ENOTDIR, EACCES, ENOSPC of a file this command touched) or an abort names
    // what failed: it is not a parse of what git answered.
    const { syscall } = err as NodeJS.ErrnoException;
    if ((syscall !== undefined && !syscall.startsWith('spawn')) || err.name === 'AbortError')
      return undefined;
  }
  if (/git: not found on PATH|the git on PATH/.test(message)) return undefined;
  const { requireGit } = await import('../git.ts');
  try {
    // Bounded: a git that never answers must not hold a failed command open.
    await requireGit(cwd, { timeoutMs: GIT_CHECK_TIMEOUT_MS });
    return undefined;
  } catch (broken) {
    // No git at all is its own error (GIT_NOT_FOUND), raised where git was needed.
    if (broken instanceof LockstepError && /the git on PATH does not work/.test(broken.message))
      return broken;
    return undefined;
  }
}

/**
 * Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 usage.
 * Errors are printed as one line; `LOCKSTEP_DEBUG=1` adds the stack.
 */
export async function main(argv: string[], output: Output = processOutput): Promise<number> {
  const io: CliIO = { ...output, cwd: process.cwd() };
  try {
    const program = await buildProgram(io, argv);
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (caught) {
    if (caught instanceof CommanderError) {
      // --help and --version surface as "errors" with exit code 0.
      if (caught.exitCode === 0) return 0;
      return 2;
    }
    const err = (await brokenGitInstead(caught, io.cwd)) ?? caught;
    // A configuration file with several problems reports all of them, one line each.
    const lines = err instanceof ConfigProblems ? err.lines : [toOneLine(err)];
    for (const line of lines) io.err(`lockstep: ${line}`);
    if (process.env.LOCKSTEP_DEBUG === '1' && err instanceof Error && err.stack) io.err(err.stack);
    return err instanceof LockstepError ? err.exitCode : 1;
  }
}
