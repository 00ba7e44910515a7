/**
 * `lockstep exp queue start | status | logs | remove`: experiments recorded with `exp run --queue`,
 * run later by N workers, each in its own worktree.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';
import { parsePositiveInt, wrap } from '../../store/format.ts';

export function registerQueue(exp: Command, io: CliIO): void {
  const queue = exp.command('queue').description('the experiment queue: start, status, logs, remove');
  queue
    .command('start')
    .description('run the queued experiments, N at a time, each in its own worktree')
    .option('-j, --jobs <n>', 'experiments at the same time (default 1)', wrap(parsePositiveInt('--jobs', 1)))
    .option(
      '--compute <backend>',
      "where every stage of every entry computes: local or vertex (default: the entry's --compute, else compute: in .lockstep/config.yaml)",
    )
    .option('--json', 'print JSON')
    .action(async (opts: { jobs?: number; compute?: string; json?: boolean }) => {
      const { startQueue } = await import('../../experiments/queue.ts');
      const { parseComputeOverride } = await import('../../experiments/workspace.ts');
      const repo = findRepo(io.cwd);
      const res = await startQueue(repo, {
        jobs: opts.jobs,
        compute: parseComputeOverride(opts.compute),
        out: opts.json ? undefined : io,
      });
      if (opts.json) io.out(JSON.stringify(res, null, 2));
      else
        io.out(
          `queue: ${res.done.length} done, ${res.failed.length} failed${res.failed.length ? ` (${res.failed.join(', ')})` : ''}`,
        );
      if (res.failed.length > 0) {
        const { LockstepError } = await import('../../errors.ts');
        throw new LockstepError(
          `exp queue: ${res.failed.length} experiment(s) failed "${res.failed.join(', ')}". Read lockstep exp queue logs <name>.`,
        );
      }
    });
  queue
    .command('status')
    .description('queued, running, done and failed experiments')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { listQueue } = await import('../../experiments/queue.ts');
      const { renderTable } = await import('../../table.ts');
      const entries = await listQueue(findRepo(io.cwd));
      if (opts.json)
        return io.out(
          JSON.stringify(
            entries.map(({ paramsText: _, ...e }) => e),
            null,
            2,
          ),
        );
      if (entries.length === 0) return io.out('queue: empty');
      const rows = entries.map((e) => [
        e.name,
        e.state,
        Object.entries(e.overrides)
          .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
          .join(' '),
        e.base.slice(0, 8),
        e.state === 'running' ? `pid ${e.pid}` : (e.result?.status ?? e.error ?? ''),
      ]);
      io.out(renderTable(['name', 'state', 'params', 'base', 'detail'], rows));
    });
  queue
    .command('logs <name>')
    .description("print a queued experiment's log")
    .action(async (name: string) => {
      const fs = await import('node:fs');
      const { queueLogPath } = await import('../../experiments/queue.ts');
      const { LockstepError } = await import('../../errors.ts');
      const file = queueLogPath(findRepo(io.cwd), name);
      if (!fs.existsSync(file))
        throw new LockstepError(
          `exp queue logs ${name}: no log yet. It runs when lockstep exp queue start picks it.`,
        );
      io.out(fs.readFileSync(file, 'utf8').trimEnd());
    });
  queue
    .command('remove [names...]')
    .description('remove queued, done or failed entries (never a running one)')
    .option('--all', 'every entry that is not running')
    .option('--json', 'print JSON')
    .action(async (names: string[], opts: { all?: boolean; json?: boolean }) => {
      const { removeFromQueue } = await import('../../experiments/queue.ts');
      const { UsageError } = await import('../../errors.ts');
      if (!opts.all && names.length === 0)
        throw new UsageError('exp queue remove: name an entry, or pass --all.');
      const removed = await removeFromQueue(findRepo(io.cwd), opts.all ? 'all' : names);
      if (opts.json) return io.out(JSON.stringify({ removed }, null, 2));
      io.out(
        `removed ${removed.length} queue entr${removed.length === 1 ? 'y' : 'ies'}: ${removed.join(', ')}`,
      );
    });
}
