/**
 * The shared shape of `params diff` and `metrics diff`: two revisions (default HEAD vs the
 * workspace), rows of old/new/delta, printed as a table, Markdown (`--md`) or JSON (`--json`).
 */
import type { Command } from 'commander';
import type { CliIO } from './main.ts';
import type { Repo } from '../repo.ts';
import type { DiffRow } from '../pipeline/diff.ts';

/** Full commit ids are shortened in table headers (JSON keeps them whole). */
const shortRev = (rev: string) => (/^[0-9a-f]{40,64}$/.test(rev) ? rev.slice(0, 10) : rev);

export interface DiffCommandOptions {
  description: string;
  /** Column header of the keys (`param`, `metric`). */
  keyHeader: string;
  /** The flag that flips the default listing, with its help: `--all` or `--changed`. */
  flag: { name: 'all' | 'changed'; help: string };
  /** Rows between revisions `a` and `b`; `flag` says whether the flag was given. */
  rows: (repo: Repo, a: string, b: string, flag: boolean) => Promise<DiffRow[]>;
}

/** Adds `diff [a] [b] [--md] [--json] [--<flag>]` under `parent`. */
export function registerDiffCommand(parent: Command, io: CliIO, options: DiffCommandOptions): void {
  parent
    .command('diff')
    .description(options.description)
    .argument('[a]', 'old revision', 'HEAD')
    .argument('[b]', 'new revision, or "workspace"', 'workspace')
    .option('--md', 'Markdown table (for PR comments)')
    .option('--json', 'print rows as JSON')
    .option(`--${options.flag.name}`, options.flag.help)
    .action(
      async (
        a: string,
        b: string,
        opts: { md?: boolean; json?: boolean; all?: boolean; changed?: boolean },
      ) => {
        const { findRepo } = await import('../repo.ts');
        const { renderDiffTable } = await import('../pipeline/diff.ts');
        const rows = await options.rows(findRepo(io.cwd), a, b, Boolean(opts[options.flag.name]));
        if (opts.json) io.out(JSON.stringify({ a, b, rows }, null, 2));
        else
          io.out(
            renderDiffTable(rows, {
              markdown: opts.md,
              labels: [shortRev(a), shortRev(b)],
              keyHeader: options.keyHeader,
            }),
          );
      },
    );
}
