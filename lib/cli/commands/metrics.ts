/**
 * `lockstep metrics diff [a] [b] [--md] [--json] [--changed] [--no-slices]`: metrics recorded in
 * the lockfile at two revisions (default HEAD vs the workspace), with delta and %; then the
 * evaluate slices of `b` (read from its evaluate out by hash), worst first, with intervals and the
 * change against `a`. Slice and
 * interval keys stay out of the first table (they are the second one), and out of `metrics show`
 * unless `--all`.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { registerDiffCommand } from '../diff-command.ts';

export function register(program: Command, io: CliIO): void {
  const metrics = program.command('metrics').description('inspect metrics recorded in the lockfile');
  metrics
    .command('show')
    .description('metrics of a revision (default the workspace)')
    .argument('[rev]', 'revision, or "workspace"', 'workspace')
    .option('--json', 'print as JSON (every key, evaluate slices from its out)')
    .option('--all', 'list slice and interval keys too (evaluate slices from its out)')
    .action(async (rev: string, opts: { json?: boolean; all?: boolean }) => {
      const [{ findRepo }, { metricsAt, recordedMetricsAt }, { formatValue }, { isSliceOrIntervalKey }] =
        await Promise.all([
          import('../../repo.ts'),
          import('../../pipeline/revisions.ts'),
          import('../../pipeline/diff.ts'),
          import('../../slices/shape.ts'),
        ]);
      const repo = findRepo(io.cwd);
      let m: Record<string, number>;
      if (opts.json || opts.all) {
        // Every key, evaluate's slices included: they are read from its out when the lockfile
        // leaves them out, so scripts reading `evaluate.slices.*` see them as before.
        const recorded = await recordedMetricsAt(repo, rev);
        if (recorded.missing) io.err(`(${recorded.missing})`);
        m = recorded.metrics;
      } else {
        m = await metricsAt(repo, rev);
      }
      if (opts.json) return io.out(JSON.stringify(m, null, 2));
      // Evaluate records hundreds of slice and interval keys; `metrics diff` tables the slices.
      const hidden = opts.all ? [] : Object.keys(m).filter(isSliceOrIntervalKey);
      for (const [k, v] of Object.entries(m))
        if (opts.all || !isSliceOrIntervalKey(k)) io.out(`${k}  ${formatValue(v)}`);
      if (hidden.length > 0)
        io.out(
          `(${hidden.length} slice and interval keys not listed: --all lists them, lockstep metrics diff tables the slices)`,
        );
    });
  registerDiffCommand(metrics, io, {
    description: 'metrics between two revisions (default HEAD vs workspace), with delta and %',
    keyHeader: 'metric',
    flag: { name: 'changed', help: 'list changed metrics only' },
    rows: async (repo, a, b, changed) => {
      const [{ metricsAt }, { diffMetrics }, { isSliceOrIntervalKey }] = await Promise.all([
        import('../../pipeline/revisions.ts'),
        import('../../pipeline/diff.ts'),
        import('../../slices/shape.ts'),
      ]);
      const rows = diffMetrics(await metricsAt(repo, a), await metricsAt(repo, b), { all: !changed });
      return rows.filter((r) => !isSliceOrIntervalKey(r.key));
    },
    extra: {
      key: 'slices',
      help: 'leave out the slice table',
      render: async (repo, a, b, markdown) => {
        const [{ evalMetricsAt }, { renderSliceTable, sliceRows }] = await Promise.all([
          import('../../pipeline/revisions.ts'),
          import('../../slices/table.ts'),
        ]);
        // From each revision's evaluate out, by hash: the lockfile records headline metrics only.
        const [oldM, newM] = await Promise.all([evalMetricsAt(repo, a), evalMetricsAt(repo, b)]);
        const rows = sliceRows(newM, oldM);
        const missing = [newM.missing, oldM.missing].filter(Boolean).map((m) => `(${m})`);
        if (rows.length === 0) return { text: missing.join('\n'), json: [] };
        const title = markdown ? '**Slices (worst first)**' : 'slices (worst first):';
        const short = /^[0-9a-f]{40,64}$/.test(a) ? a.slice(0, 10) : a;
        const table = `${title}\n${renderSliceTable(rows, { markdown, baseLabel: short })}`;
        return { text: [table, ...missing].join('\n'), json: rows };
      },
    },
  });
}
