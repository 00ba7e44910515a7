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
  /**
   * More output after the table (`metrics diff`: the slice table), as text or Markdown, and as a
   * JSON value under `key`; given with `--no-<key>` to leave it out.
   */
  extra?: {
    key: string;
    help: string;
    render: (repo: Repo, a: string, b: string, markdown: boolean) => Promise<{ text: string; json: unknown }>;
  };
}

/** Adds `diff [a] [b] [--md] [--json] [--<flag>]` under `parent`. */
export function registerDiffCommand(parent: Command, io: CliIO, options: DiffCommandOptions): void {
  const command = parent
    .command('diff')
    .description(options.description)
    .argument('[a]', 'old revision', 'HEAD')
    .argument('[b]', 'new revision, or "workspace"', 'workspace')
    .option('--md', 'Markdown table (for PR comments)')
    .option('--json', 'print rows as JSON')
    .option(`--${options.flag.name}`, options.flag.help);
  if (options.extra) command.option(`--no-${options.extra.key}`, options.extra.help);
  command.action(
    async (
      a: string,
      b: string,
      opts: { md?: boolean; json?: boolean; all?: boolean; changed?: boolean } & Record<string, unknown>,
    ) => {
      const { findRepo } = await import('../repo.ts');
      const { renderDiffTable } = await import('../pipeline/diff.ts');
      const repo = findRepo(io.cwd);
      const rows = await options.rows(repo, a, b, Boolean(opts[options.flag.name]));
      const extra =
        options.extra && opts[options.extra.key] !== false
          ? await options.extra.render(repo, a, b, Boolean(opts.md))
          : undefined;
      if (opts.json) {
        io.out(
          JSON.stringify({ a, b, rows, ...(extra ? { [options.extra!.key]: extra.json } : {}) }, null, 2),
        );
        return;
      }
      io.out(
        renderDiffTable(rows, {
          markdown: opts.md,
          labels: [shortRev(a), shortRev(b)],
          keyHeader: options.keyHeader,
        }),
      );
      if (extra?.text) io.out(`\n${extra.text}`);
    },
  );
}
