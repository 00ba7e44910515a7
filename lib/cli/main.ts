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

/** Builds the commander program with every command registered. */
export async function buildProgram(io: CliIO): Promise<Command> {
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
  const modules = await Promise.all(
    COMMANDS.map(async (name) => (await import(`./commands/${name}.ts`)) as { register: Registrar }),
  );
  for (const mod of modules) mod.register(program, io);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/**
 * Runs the CLI and returns the exit code: 0 ok, 1 failure, 2 usage.
 * Errors are printed as one line; `LOCKSTEP_DEBUG=1` adds the stack.
 */
export async function main(argv: string[], output: Output = processOutput): Promise<number> {
  const io: CliIO = { ...output, cwd: process.cwd() };
  try {
    const program = await buildProgram(io);
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version surface as "errors" with exit code 0.
      if (err.exitCode === 0) return 0;
      return 2;
    }
    // A configuration file with several problems reports all of them, one line each.
    const lines = err instanceof ConfigProblems ? err.lines : [toOneLine(err)];
    for (const line of lines) io.err(`lockstep: ${line}`);
    if (process.env.LOCKSTEP_DEBUG === '1' && err instanceof Error && err.stack) io.err(err.stack);
    return err instanceof LockstepError ? err.exitCode : 1;
  }
}
