/**
 * `lockstep provenance <ref>`: the in-toto / SLSA provenance statement of the model pinned at
 * <ref> (subject: the model directory's manifest hash; materials: commit, data, params, lock
 * entry), printed or written atomically with `--out`. In GitHub Actions the builder is the
 * workflow run. `lockstep verify <ref> --provenance <file>` checks one offline.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

interface ProvenanceOpts {
  out?: string;
  image?: string;
  builder?: string;
  json?: boolean;
}

export function register(program: Command, io: CliIO): void {
  program
    .command('provenance <ref>')
    .description('write the in-toto SLSA provenance statement of the model pinned at <ref>')
    .option('-o, --out <file>', 'write the statement to <file> (default: print it)')
    .option('--image <ref>', 'serving image by digest (<repository>@sha256:...) to record as a material')
    .option('--builder <id>', 'builder id (default: the GitHub Actions run, else "lockstep")')
    .option('--json', 'print the statement as JSON (also with --out)')
    .action(async (ref: string, opts: ProvenanceOpts) => {
      const path = await import('node:path');
      const { findRepo } = await import('../../repo.ts');
      const { provenanceAt } = await import('../../registry/provenance.ts');
      const { writeFileAtomic } = await import('../../atomic.ts');
      const repo = findRepo(io.cwd);
      const { GITHUB_SERVER_URL: server, GITHUB_REPOSITORY: slug, GITHUB_RUN_ID: run } = process.env;
      const inActions = Boolean(server && slug && run);
      const statement = await provenanceAt(repo.root, ref, {
        image: opts.image || undefined,
        builder: opts.builder ?? (inActions ? `${server}/${slug}/actions/runs/${run}` : undefined),
        invocationId: inActions ? run : undefined,
        repositoryUrl: server && slug ? `${server}/${slug}` : undefined,
      });
      const text = JSON.stringify(statement, null, 2) + '\n';
      if (!opts.out) return io.out(text.trimEnd());
      await writeFileAtomic(path.resolve(io.cwd, opts.out), text);
      if (opts.json) return io.out(text.trimEnd());
      const [subject] = statement.subject;
      io.out(
        `wrote ${opts.out}: ${subject.name} sha256:${subject.digest.sha256.slice(0, 12)}, ${statement.predicate.buildDefinition.resolvedDependencies.length} materials`,
      );
    });
}
