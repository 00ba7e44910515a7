/** `lockstep verify <ref>`: reproduce a commit's model in a temporary worktree and compare hashes. */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';
import { IntegrityError, LockstepError } from '../../errors.ts';

/** Statements lockstep writes are a few KB; anything far larger is not one. */
const MAX_STATEMENT_BYTES = 16 * 1024 * 1024;

/** `verify <ref> --provenance <file>`: one line per mismatch, exit 1 when there is any. */
async function verifyProvenance(io: CliIO, ref: string, file: string, json?: boolean): Promise<void> {
  const { open } = await import('node:fs/promises');
  const path = await import('node:path');
  const { checkProvenance, parseProvenance } = await import('../../registry/provenance.ts');
  const cannotRead = (err: NodeJS.ErrnoException) =>
    new LockstepError(
      `${file}: cannot read (${err.code ?? err.message}). Pass the statement lockstep provenance wrote.`,
    );
  const handle = await open(path.resolve(io.cwd, file), 'r').catch((err: NodeJS.ErrnoException) => {
    throw cannotRead(err);
  });
  let text: string;
  try {
    // A statement is a few kilobytes: a device (/dev/zero), a pipe or a huge file is refused
    // before it is read, instead of reading until memory runs out.
    const st = await handle.stat();
    if (!st.isFile() || st.size > MAX_STATEMENT_BYTES)
      throw new LockstepError(
        `${file}: ${st.isFile() ? `too large for a provenance statement (${st.size} bytes, at most ${MAX_STATEMENT_BYTES})` : 'not a regular file'}. Pass the statement lockstep provenance wrote.`,
      );
    text = await handle.readFile('utf8').catch((err: NodeJS.ErrnoException) => {
      throw cannotRead(err);
    });
  } finally {
    await handle.close();
  }
  const repo = findRepo(io.cwd);
  const res = await checkProvenance(repo.root, ref, parseProvenance(text, file));
  if (json) io.out(JSON.stringify({ ...res, ok: res.mismatches.length === 0 }, null, 2));
  else for (const m of res.mismatches) io.out(`${file}: ${m}`);
  if (res.mismatches.length > 0)
    throw new IntegrityError(
      `verify ${ref}: ${file} does not match the lockfile at ${res.commit.slice(0, 8)} (${res.mismatches.length} mismatch${res.mismatches.length === 1 ? '' : 'es'}). Check the statement was written for this ref.`,
    );
  if (!json)
    io.out(
      `provenance matches: ${file} is the model of ${ref} (${res.commit.slice(0, 8)}): subject and materials`,
    );
}

export function register(program: Command, io: CliIO): void {
  program
    .command('verify <ref>')
    .description('reproduce the model of <ref> from its commit in a temporary worktree and compare hashes')
    .option('--pipeline <module>', 'pipeline module to run in the worktree (default: stages/pipeline.ts)')
    .option('--keep', 'keep the worktree for inspection')
    .option(
      '--provenance <file>',
      "check a provenance statement's subject and materials against the lockfile at <ref> (offline; no reproduction)",
    )
    .option('--json', 'print JSON')
    .action(
      async (
        ref: string,
        opts: { pipeline?: string; keep?: boolean; json?: boolean; provenance?: string },
      ) => {
        if (opts.provenance) return verifyProvenance(io, ref, opts.provenance, opts.json);
        const { verifyRef } = await import('../../registry/verify.ts');
        const repo = findRepo(io.cwd);
        const res = await verifyRef(repo, ref, {
          out: opts.json ? undefined : io,
          keep: opts.keep,
          reproArgs: opts.pipeline ? ['--pipeline', opts.pipeline] : [],
        });
        if (opts.json) io.out(JSON.stringify(res, null, 2));
        else {
          for (const o of res.outputs) {
            io.out(
              `${o.match ? 'same' : 'DIFF'}  ${o.stage.padEnd(10)} ${o.path.padEnd(28)} ${o.expected.slice(0, 12)} ${o.match ? '' : '→ ' + (o.actual?.slice(0, 12) ?? 'missing')}`,
            );
          }
          io.out(
            res.reproducible
              ? `reproducible: every output of ${res.commit.slice(0, 8)} matched bit for bit (${res.seconds.toFixed(1)} s)`
              : `not reproducible: ${res.outputs.filter((o) => !o.match).length} output(s) differ`,
          );
        }
        if (!res.reproducible) {
          throw new LockstepError(
            `verify ${ref}: ${res.outputs
              .filter((o) => !o.match)
              .map((o) => o.path)
              .join(
                ', ',
              )} did not reproduce. Check the stage for unseeded randomness or a different backend.`,
          );
        }
      },
    );
}
