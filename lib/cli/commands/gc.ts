/**
 * `lockstep gc`: delete cache objects no kept lockfile references (the workspace, branches,
 * tags, the last N commits, experiments).
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { formatBytes, parsePositiveInt, wrap } from '../../store/format.ts';

interface GcCliOptions {
  remote?: string | boolean;
  grace?: number;
  force?: boolean;
  keepLast?: number;
  experiments?: boolean;
  expOlderThan?: number;
  dry?: boolean;
  json?: boolean;
}

const KIND_LABEL: Record<string, string> = {
  workspace: 'workspace',
  branch: 'branches',
  tag: 'tags',
  commit: 'recent commits',
  experiment: 'experiments',
};

export function register(program: Command, io: CliIO): void {
  program
    .command('gc')
    .description(
      'delete cache objects not referenced by the lockfile in the workspace, on any branch or tag, in the last N commits or in an experiment',
    )
    .option(
      '--keep-last <n>',
      'also keep lockfiles of the last N commits of HEAD (default 10)',
      wrap(parsePositiveInt('--keep-last')),
    )
    .option(
      '--no-experiments',
      "do not keep experiments' artifacts (refs/exps/*, tuning trials, pulled ones)",
    )
    .option(
      '--exp-older-than <days>',
      'do not keep artifacts of experiments created more than <days> days ago',
      wrap(parsePositiveInt('--exp-older-than')),
    )
    .option('--dry', 'print what each kind of root keeps and what would be deleted, delete nothing')
    .option(
      '--remote [url]',
      'collect the remote instead (default: the configured one): keeps what environment branches (last N commits), tags, the default branch (last N commits) and experiments reference; a dry run unless --force',
    )
    .option(
      '--grace <hours>',
      'with --remote: never delete objects changed in the last <hours> (default 24)',
      wrap(parsePositiveInt('--grace')),
    )
    .option('--force', 'with --remote: delete (without it, only report)')
    .option('--json', 'print the plan as JSON')
    .action(async (opts: GcCliOptions) => {
      if (opts.remote !== undefined) return remoteGc(io, opts);
      if (opts.force || opts.grace !== undefined) {
        const { UsageError } = await import('../../errors.ts');
        throw new UsageError('--force and --grace apply to gc --remote. Add --remote, or drop them.');
      }
      const { findRepo } = await import('../../repo.ts');
      const { withRepoLock } = await import('../../lock.ts');
      const { collectGarbage } = await import('../../store/gc.ts');
      const repo = findRepo(io.cwd);
      // The lock keeps a concurrent add or repro from inserting objects gc has not seen referenced.
      const plan = await withRepoLock(
        repo,
        'gc',
        () =>
          collectGarbage(repo, {
            keepLast: opts.keepLast,
            experiments: opts.experiments,
            experimentMaxAgeDays: opts.expOlderThan,
            dryRun: opts.dry,
            out: io,
          }),
        { out: io },
      );
      if (opts.json) {
        io.out(JSON.stringify(plan, null, 2));
        return;
      }
      const verb = plan.dryRun ? 'would delete' : 'deleted';
      if (plan.dryRun) {
        for (const k of plan.keptBy) {
          const names = k.roots.length > 5 ? `${k.roots.slice(0, 5).join(', ')}, ...` : k.roots.join(', ');
          const label =
            k.kind === 'workspace' ? 'workspace' : `${KIND_LABEL[k.kind]} (${k.roots.length}: ${names})`;
          io.out(`kept by ${label}: ${k.objects} objects, ${k.only} only by them`);
        }
        for (const d of plan.deleted) io.out(`${verb} ${d.oid} (${formatBytes(d.size)})`);
      }
      if (plan.droppedExperiments.length > 0) {
        io.out(
          `experiments not kept (${plan.droppedExperiments.length}): ${plan.droppedExperiments.join(', ')}; exp apply of them needs their artifacts on the remote`,
        );
      }
      if (plan.inFlight.writers.length > 0) {
        io.out(
          `kept ${plan.inFlight.objects} objects written since ${plan.inFlight.writers.length} running command(s) started (${plan.inFlight.writers.join(', ')}); run gc again when they finish to collect what they leave unpinned`,
        );
      }
      io.out(
        `${verb} ${plan.deleted.length} objects (${formatBytes(plan.bytes)}), kept ${plan.kept}; run-cache entries dropped: ${plan.runEntries}; lockfiles read: ${plan.roots.length}`,
      );
    });
}

async function remoteGc(io: CliIO, opts: GcCliOptions): Promise<void> {
  const { findRepo } = await import('../../repo.ts');
  const { resolveRemote } = await import('../../store/sync.ts');
  const { collectRemoteGarbage } = await import('../../store/remote-gc.ts');
  const repo = findRepo(io.cwd);
  const remote = await resolveRemote(repo, typeof opts.remote === 'string' ? opts.remote : undefined, io.cwd);
  const plan = await collectRemoteGarbage(repo, remote, {
    keepLast: opts.keepLast,
    graceMs: opts.grace !== undefined ? opts.grace * 3_600_000 : undefined,
    apply: Boolean(opts.force) && !opts.dry,
    out: io,
  });
  if (opts.json) {
    io.out(JSON.stringify(plan, null, 2));
    return;
  }
  for (const kind of ['environment', 'tag', 'default-branch', 'experiment'] as const) {
    const roots = plan.roots.filter((r) => r.kind === kind);
    if (roots.length === 0) continue;
    const names = roots.map((r) => (r.commits > 1 ? `${r.name} (${r.commits} commits)` : r.name));
    const shown = names.length > 5 ? `${names.slice(0, 5).join(', ')}, ...` : names.join(', ');
    io.out(`keeping ${kind} ${roots.length > 1 ? `roots (${roots.length})` : 'root'}: ${shown}`);
  }
  for (const m of plan.unreadableManifests)
    io.err(`manifest ${m} is on neither the cache nor the remote: its files cannot be told from garbage`);
  const verb = plan.dryRun ? 'would delete' : 'deleted';
  const count = plan.dryRun ? plan.candidates : plan.deleted;
  io.out(
    `${plan.remote}: listed ${plan.listed} objects, ${plan.referenced} referenced, ${plan.young} unreferenced but changed within the grace period; ${verb} ${count} (${formatBytes(plan.bytes)})${plan.raced ? `, kept ${plan.raced} used since the listing` : ''}${plan.staleTemps ? `; ${verb} ${plan.staleTemps} temp file(s) of uploads that never finished` : ''}`,
  );
  if (plan.dryRun && plan.candidates > 0) io.out('run again with --force to delete them');
}
