/**
 * `lockstep ui [--host <addr>] [--port <n>] | --export <dir>`: the read-only dashboard
 * (registry, environments, experiments, lineage, monitoring), served on 127.0.0.1 or written as
 * a static site.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { UsageError } from '../../errors.ts';
import { findRepo } from '../../repo.ts';

function portOption(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535)
    throw new UsageError(`--port: not a port number "${v}". Pass 0 to 65535 (0: any free port).`);
  return n;
}

export function register(program: Command, io: CliIO): void {
  program
    .command('ui')
    .description('the dashboard: registry, environments, experiments, lineage, monitoring (read-only)')
    .option('--host <addr>', 'bind address (default 127.0.0.1)')
    .option('-p, --port <n>', 'port (default any free port)', portOption)
    .option('--export <dir>', 'write the pages as a static site into <dir> instead of serving')
    .option('--json', 'print the address (or the export summary) as JSON')
    .action(async (opts: { host?: string; port?: number; export?: string; json?: boolean }) => {
      const repo = findRepo(io.cwd);
      if (opts.export) {
        if (opts.host !== undefined || opts.port !== undefined)
          throw new UsageError(`--export: writes files "${opts.export}". Drop --host and --port.`);
        const { exportSite } = await import('../../ui/export.ts');
        const path = await import('node:path');
        const res = await exportSite(repo, path.resolve(io.cwd, opts.export), { cwd: io.cwd });
        if (opts.json) return io.out(JSON.stringify(res, null, 2));
        return io.out(
          `exported ${res.files} files (${res.registry} registry entries, ${res.experiments} experiment rows) to ${res.dir}/index.html`,
        );
      }
      const { startUiServer } = await import('../../ui/server.ts');
      const { app, url } = await startUiServer(repo, { host: opts.host, port: opts.port });
      io.out(opts.json ? JSON.stringify({ url }) : `dashboard on ${url}/ (read-only; Ctrl-C stops it)`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      await app.close();
    });
}
