/** `lockstep lineage <ref>`: data, params, code fingerprints and stage graph of a registry entry. */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('lineage <ref>')
    .description('data manifest hash, params, code fingerprints, stage graph and commit of <ref>')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const { lineageAt } = await import('../../registry/lineage.ts');
      const repo = findRepo(io.cwd);
      const l = await lineageAt(repo.root, ref);
      if (opts.json) return io.out(JSON.stringify(l, null, 2));
      io.out(`commit: ${l.commit}`);
      io.out(`model:  ${l.model ?? '(none)'}`);
      io.out('data:');
      for (const [p, h] of Object.entries(l.data)) io.out(`  ${p}  ${h}`);
      io.out('params:');
      for (const [k, v] of Object.entries(l.params)) io.out(`  ${k} = ${JSON.stringify(v)}`);
      io.out('code:');
      for (const [s, h] of Object.entries(l.code)) io.out(`  ${s}  ${h.slice(0, 12)}`);
      io.out('graph:');
      for (const e of l.edges) io.out(`  ${e.from} → ${e.to}  (${e.path})`);
    });
}
