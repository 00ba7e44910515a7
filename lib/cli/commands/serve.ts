// Placeholder registration; the owning module replaces this file with the real command.
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { LockstepError } from '../../errors.ts';

export function register(program: Command, _io: CliIO): void {
  program
    .command('serve')
    .description('(not available yet)')
    .action(() => {
      throw new LockstepError('serve: not available in this build.');
    });
}
