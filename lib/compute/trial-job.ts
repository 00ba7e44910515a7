/**
 * The job side of a tuning trial on Vertex AI (`lockstep job trial --remote <url> --key <key>`):
 * reads the trial spec, checks the image carries the repository's trial code, checks the
 * featurized data out by hash into a scratch directory, runs the trial (the same `runTrial` a
 * local tune runs on a worker thread) and writes each epoch's pruning value to the remote as it
 * goes, then the outcome. The trial never stops itself: the tuning process reads the epochs,
 * decides pruning with the study's median pruner, and cancels the job.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoAt } from '../repo.ts';
import type { Output } from '../output.ts';
import { ConfigError, UsageError, toOneLine } from '../errors.ts';
import { openRemote } from '../store/open-remote.ts';
import { checkoutArtifact } from '../store/checkout.ts';
import { codeFingerprint } from '../pipeline/fingerprint.ts';
import { runTrial, type TrainParams } from '../tune/trial.ts';
import { openNamedStore } from './named.ts';
import { encodeNumbers, TRIAL_CODE, trialPaths, trialSpecSchema } from './trial-spec.ts';

export interface RunTrialJobOptions {
  remote: string;
  key: string;
  out: Output;
  /** Image working directory holding the code (default: cwd). */
  imageRoot?: string;
}

/** Runs the trial described at `trials/<key>/spec.json` on `remote`. */
export async function runTrialJob(options: RunTrialJobOptions): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(options.key))
    throw new UsageError(
      `--key: not a trial key "${options.key}". Pass the 64-hex key lockstep tune submitted the job with.`,
    );
  const { key, out } = options;
  const imageRoot = options.imageRoot ?? process.cwd();
  const named = await openNamedStore(options.remote, imageRoot);
  const scratch = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'lockstep-trial-'));
  try {
    const text = await named.read(trialPaths.spec(key));
    if (!text)
      throw new ConfigError(
        `${options.remote}/${trialPaths.spec(key)}: trial spec not found. Start the study with lockstep tune.`,
      );
    const spec = trialSpecSchema.parse(JSON.parse(text.text));
    const code = codeFingerprint(repoAt(imageRoot), { name: 'tune', code: TRIAL_CODE });
    if (code !== spec.code) {
      throw new ConfigError(
        `image: trial code differs from the repository's "${code.slice(0, 12)} != ${spec.code.slice(0, 12)}". Rebuild and push the image from this commit.`,
      );
    }
    const remote = await openRemote(options.remote, { baseDir: imageRoot });
    await checkoutArtifact(repoAt(scratch), spec.features, { remote });
    out.err(`tune: trial ${spec.number}: features ${spec.features.hash.slice(0, 12)} checked out`);
    // Epoch values go out in order, one write at a time, while training goes on.
    let writes = Promise.resolve();
    const outcome = await runTrial({
      featuresDir: path.join(scratch, spec.features.path),
      train: spec.train as unknown as TrainParams,
      objective: spec.objective,
      folds: spec.folds,
      onEpoch: (epoch, value) => {
        writes = writes.then(async () => {
          await named.write(trialPaths.epoch(key, epoch), encodeNumbers({ epoch, value }));
        });
        return false;
      },
    });
    await writes;
    await named.write(trialPaths.outcome(key), encodeNumbers(outcome) + '\n');
    out.err(`tune: trial ${spec.number}: ${spec.objective}=${outcome.value}`);
  } catch (err) {
    const line = toOneLine(err);
    out.err(`error: ${line}`);
    await named.write(trialPaths.error(key), line + '\n').catch(() => undefined);
    throw err;
  } finally {
    await fs.promises.rm(scratch, { recursive: true, force: true });
  }
}
