/**
 * Tuning trials as Vertex AI CustomJobs (the TrialExecutor `lockstep tune` uses when
 * `compute.tune.backend` is `vertex`). The featurized data is pushed to the remote once (only
 * the objects it lacks); each trial writes its spec, gets one job (`lockstep job trial`), and is
 * followed like a stage job. The trial writes each epoch's pruning value to the remote; every
 * poll reads the epochs not seen yet, in order, and asks the study's median pruner, here in the
 * tuning process, exactly as a local tune asks it. A trial the pruner stops has its job
 * cancelled (once) and is reported pruned at that epoch; Ctrl-C cancels every running trial job.
 *
 * A local trial that is pruned still scores the model it stopped with; a cancelled job cannot,
 * so a pruned remote trial has no value (NaN) and counts as the worst so far for the sampler.
 */
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { Output } from '../output.ts';
import type { ArtifactRef } from '../types.ts';
import { commitArtifact, artifactObjects, dirsOf } from '../store/artifacts.ts';
import { Cache } from '../store/cache.ts';
import { openRemote } from '../store/open-remote.ts';
import { pushObjects } from '../store/transfer.ts';
import { toOneLine } from '../errors.ts';
import { codeFingerprint } from '../pipeline/fingerprint.ts';
import type { TrialExecutor } from '../tune/tuner.ts';
import type { TrialOutcome } from '../tune/trial.ts';
import { openNamedStore, type NamedStore } from './named.ts';
import type { ResolvedStageCompute, VertexSettings } from './resolve.ts';
import { jobServiceClient, vertexPollMs, type JobServiceClient } from './jobs-client.ts';
import { consoleLink, labelValue, submitCustomJob } from './job-submit.ts';
import { followJob } from './job-follow.ts';
import {
  decodeNumbers,
  TRIAL_CODE,
  trialEpochSchema,
  trialKey,
  trialOutcomeSchema,
  trialPaths,
  type TrialSpec,
} from './trial-spec.ts';

export interface VertexTrialsOptions {
  repo: Repo;
  vertex: VertexSettings;
  compute: ResolvedStageCompute;
  /** The study's id (`tune-<stamp>-<random>`), a label of every trial job. */
  study: string;
  /** Featurized data the trials train on (absolute path inside the repository). */
  featuresDir: string;
  out?: Output;
  /** Longest wait between polls in ms (default 10 s; LOCKSTEP_VERTEX_POLL_MS overrides). */
  pollMs?: number;
}

const quiet: Output = { isTTY: false, out: () => undefined, err: () => undefined };

/** A TrialExecutor running each trial as one CustomJob. */
export function vertexTrialExecutor(o: VertexTrialsOptions): TrialExecutor {
  const out = o.out ?? quiet;
  const pollMs = o.pollMs ?? vertexPollMs();
  let ready: Promise<{ client: JobServiceClient; named: NamedStore; features: ArtifactRef; code: string }>;
  const prepare = () =>
    (ready ??= (async () => {
      const rel = path.relative(o.repo.root, o.featuresDir).split(path.sep).join('/');
      const cache = new Cache(o.repo);
      const features = await commitArtifact(o.repo, rel, { cache });
      const remote = await openRemote(o.vertex.remote, { baseDir: o.repo.root });
      const oids = await artifactObjects(o.repo, features, { cache });
      const pushed = await pushObjects(o.repo, remote, oids, { manifests: dirsOf([features]) });
      if (pushed.transferred > 0)
        out.err(`tune: pushed ${pushed.transferred} object(s) of ${rel} to ${remote.url}`);
      return {
        client: jobServiceClient(o.vertex.region),
        named: await openNamedStore(o.vertex.remote, o.repo.root),
        features,
        code: codeFingerprint(o.repo, { name: 'tune', code: TRIAL_CODE }),
      };
    })());

  return async (input, onEpoch, run) => {
    const { client, named, features, code } = await prepare();
    run.signal.throwIfAborted();
    const label = `tune: trial ${run.number}`;
    const spec: TrialSpec = {
      study: o.study,
      number: run.number,
      code,
      features,
      train: { ...input.train },
      objective: input.objective,
      folds: input.folds,
    };
    const key = trialKey(spec);
    await named.write(trialPaths.spec(key), JSON.stringify(spec) + '\n');
    const job = await submitCustomJob(client, o.vertex, {
      label,
      displayName: `lockstep-${o.study}-${run.number}`,
      labels: {
        'lockstep-study': labelValue(o.study),
        'lockstep-trial': String(run.number),
        'lockstep-key': key.slice(0, 40),
      },
      args: ['trial', '--remote', o.vertex.remote, '--key', key],
      outputUriPrefix: `${o.vertex.remote}/trials/${key}/output`,
      compute: { ...o.compute, replicas: 1 },
      signal: run.signal,
      out,
    });
    const curve: number[] = [];
    let prunedAt: number | undefined;
    let unreadable: string | undefined;
    const end = await followJob(client, job, {
      label,
      timeoutSeconds: o.compute.timeoutSeconds,
      pollMs,
      owned: true,
      signal: run.signal,
      out,
      onPoll: async (_job, cancel) => {
        if (prunedAt !== undefined || unreadable !== undefined) return;
        let name = '';
        try {
          const names = await named.list(trialPaths.epochs(key));
          // Epochs are asked about in order, each once, as a local trial asks after each epoch.
          for (name of names.slice(curve.length)) {
            const text = (await named.read(name))?.text;
            if (text === undefined) break;
            const parsed = trialEpochSchema.safeParse(decodeNumbers(text));
            if (!parsed.success)
              throw new Error(
                parsed.error.issues.map((i) => `${i.path.join('.') || 'epoch'}: ${i.message}`).join('; '),
              );
            const { epoch, value } = parsed.data;
            if (epoch !== curve.length + 1) break;
            curve.push(value);
            if (onEpoch(epoch, value)) {
              prunedAt = epoch;
              await cancel(`pruned at epoch ${epoch}`);
              return;
            }
          }
        } catch (err) {
          // An epoch that cannot be read or is not one fails the trial; its job is cancelled,
          // not left running with nobody following it.
          unreadable = `${o.vertex.remote}/${name || trialPaths.epochs(key)}: not a trial epoch (${toOneLine(err).slice(0, 200)})`;
          await cancel('unreadable epoch');
        }
      },
    });
    if (unreadable !== undefined && prunedAt === undefined)
      throw new Error(`${unreadable}. ${consoleLink(job.name!, o.vertex)}`);
    const link = consoleLink(job.name!, o.vertex);
    if (prunedAt !== undefined) {
      const pruned: TrialOutcome = { value: NaN, metrics: {}, pruned: true, epochs: prunedAt, curve };
      return pruned;
    }
    if (run.signal.aborted) throw new Error('interrupted');
    if (end.state === 'JOB_STATE_SUCCEEDED') {
      const text = (await named.read(trialPaths.outcome(key)))?.text;
      if (text === undefined)
        throw new Error(`job succeeded but wrote no ${trialPaths.outcome(key)}. ${link}`);
      return trialOutcomeSchema.parse(decodeNumbers(text));
    }
    if (end.timedOut)
      throw new Error(
        `Vertex AI job timed out after ${end.runningSeconds.toFixed(0)}s running (queued ${end.queuedSeconds.toFixed(0)}s) (compute.tune.timeout). ${link}`,
      );
    const error = (await named.read(trialPaths.error(key)))?.text.trim();
    throw new Error(
      `Vertex AI job ${end.state.replace('JOB_STATE_', '').toLowerCase()}: ${error ?? end.job.error?.message ?? 'no error reported'}. ${link}`,
    );
  };
}
