/**
 * `lockstep predict <file.wav...> --env <env>`: predict with the environment's endpoint, in-process.
 * A file the model's training schema refuses fails the command (exit 1) with validate's reason;
 * warnings are printed on stderr beside the prediction.
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';

export function register(program: Command, io: CliIO): void {
  program
    .command('predict')
    .description("predict the emotion of WAV files with an environment's endpoint")
    .argument('<files...>', 'WAV files')
    .option('-e, --env <env>', 'environment', 'dev')
    .option('--json', 'print the Vertex AI style response as JSON')
    .action(async (files: string[], opts: { env: string; json?: boolean }) => {
      const fs = await import('node:fs');
      const path = await import('node:path');
      const { findRepo } = await import('../../repo.ts');
      const { openEndpoint } = await import('../../endpoints/open.ts');
      const { UsageError } = await import('../../errors.ts');
      const repo = findRepo(io.cwd);
      const instances = files.map((f) => {
        const file = path.resolve(io.cwd, f);
        let isFile: boolean;
        try {
          isFile = fs.statSync(file).isFile();
        } catch (err) {
          throw new UsageError(
            `${f}: cannot read (${(err as NodeJS.ErrnoException).code}). Pass a WAV file path.`,
          );
        }
        // Reading a FIFO blocks for ever and /dev/zero never ends: only regular files are read.
        if (!isFile) throw new UsageError(`${f}: not a regular file. Pass a WAV file path.`);
        return { audio: fs.readFileSync(file).toString('base64') };
      });
      const { endpoint } = await openEndpoint(repo, opts.env, { out: io });
      let res;
      try {
        res = await endpoint.predict(instances);
      } catch (err) {
        (endpoint as { flush?: () => void }).flush?.();
        // The server names instances by index; a user passed files.
        const { InputAnomalyError } = await import('../../serving/checks.ts');
        if (err instanceof InputAnomalyError) {
          const { LockstepError } = await import('../../errors.ts');
          throw new LockstepError(
            err.message.replace(/^instances\[(\d+)\]\.audio/, (_m, i: string) => files[Number(i)] ?? _m),
          );
        }
        throw err;
      }
      (endpoint as { flush?: () => void }).flush?.();
      if (opts.json) {
        io.out(JSON.stringify(res, null, 2));
        return;
      }
      res.predictions.forEach((p, i) => {
        for (const a of p.anomalies ?? []) io.err(`${files[i]}: ${a.severity} ${a.kind}: ${a.detail}`);
        const top = Object.entries(p.scores)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 3)
          .map(([l, s]) => `${l} ${(s * 100).toFixed(1)}%`)
          .join(', ');
        io.out(
          `${files[i]}: ${p.label} (${top}) — deployed model ${res.deployedModelId}, version ${res.modelVersionId.slice(0, 12)}`,
        );
      });
    });
}
