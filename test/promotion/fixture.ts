/**
 * A real git repository with environment branches and lockfiles that pin small "models", for
 * registry and promotion tests. Models are directories of bytes committed to the real cache and
 * pushed to a local-directory remote, so every check runs against real objects.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { commitArtifact, artifactObjects } from '../../lib/store/artifacts.ts';
import { openRemote } from '../../lib/store/open-remote.ts';
import { pushObjects } from '../../lib/store/transfer.ts';
import { serializeLockfile } from '../../lib/lockfile.ts';
import type { ArtifactRef, Lockfile } from '../../lib/types.ts';

const PROJECT = path.resolve(import.meta.dirname, '../..');

export interface RegistryRepo {
  dir: string;
  repo: Repo;
  git: SimpleGit;
  remoteDir: string;
  /** Writes a model + lockfile on the current branch and commits it; returns the commit and model ref. */
  commitModel(options: ModelOptions): Promise<{ commit: string; model: ArtifactRef }>;
  cleanup(): Promise<void>;
}

export interface ModelOptions {
  /** Bytes that make the model unique. */
  content: string;
  /** A real model directory to pin instead of the made-up bytes. */
  modelDir?: string;
  metrics: Record<string, number>;
  /** Recorded gate verdict (1 passed, 0 failed). */
  gatePassed?: number;
  /** Push the objects to the remote (default true). */
  push?: boolean;
  /** Also write out/eval/confusion.json (and pin out/eval as a directory, as the evaluate stage does). */
  confusion?: { labels: string[]; matrix: number[][] };
  /** Extra top-level fields of out/eval/metrics.json (e.g. `slices`), outside the lockfile metrics. */
  evalExtra?: Record<string, unknown>;
  /** Corrupt the lockfile: claim a different size for the model. */
  lieAboutSize?: boolean;
  message?: string;
}

/** Creates the repository on branch `dev` with the project's promotion policies and params. */
export async function makeRegistryRepo(): Promise<RegistryRepo> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lockstep-registry-'));
  const remoteDir = await mkdtemp(path.join(os.tmpdir(), 'lockstep-remote-'));
  const git = simpleGit(dir);
  await git.raw(['init', '-q', '-b', 'dev']);
  await git.addConfig('user.email', 'ml@example.com');
  await git.addConfig('user.name', 'ML Engineer');
  await git.addConfig('commit.gpgsign', 'false');
  await git.addConfig('tag.gpgsign', 'false');
  await cp(path.join(PROJECT, 'promotion'), path.join(dir, 'promotion'), { recursive: true });
  await cp(path.join(PROJECT, 'params.yaml'), path.join(dir, 'params.yaml'));
  await writeFile(path.join(dir, '.gitignore'), '/.lockstep/*\n!/.lockstep/config.yaml\n/out/\n');
  await mkdir(path.join(dir, '.lockstep'), { recursive: true });
  await writeFile(
    path.join(dir, '.lockstep', 'config.yaml'),
    `remote: origin\nremotes:\n  origin:\n    url: ${remoteDir}\n`,
  );
  await git.add('.');
  await git.commit('initial layout');
  const repo = repoAt(dir);

  async function commitModel(o: ModelOptions): Promise<{ commit: string; model: ArtifactRef }> {
    await rm(path.join(dir, 'out'), { recursive: true, force: true });
    if (o.modelDir) await cp(o.modelDir, path.join(dir, 'out', 'model'), { recursive: true });
    else {
      await mkdir(path.join(dir, 'out', 'model'), { recursive: true });
      await writeFile(path.join(dir, 'out', 'model', 'model.json'), JSON.stringify({ content: o.content }));
      await writeFile(path.join(dir, 'out', 'model', 'weights.bin'), Buffer.from(o.content.repeat(50)));
    }
    await mkdir(path.join(dir, 'out', 'eval'), { recursive: true });
    await writeFile(
      path.join(dir, 'out', 'eval', 'metrics.json'),
      JSON.stringify({ ...o.metrics, ...o.evalExtra }),
    );
    if (o.confusion)
      await writeFile(path.join(dir, 'out', 'eval', 'confusion.json'), JSON.stringify(o.confusion));
    const model = await commitArtifact(repo, 'out/model');
    const metricsRef = await commitArtifact(repo, o.confusion ? 'out/eval' : 'out/eval/metrics.json');
    const lockfile: Lockfile = {
      schema: 1,
      data: {},
      stages: {
        train: {
          code: 'a'.repeat(64),
          deps: [],
          params: { 'train.epochs': 3 },
          outs: [o.lieAboutSize ? { ...model, size: model.size + 1 } : model],
        },
        evaluate: {
          code: 'b'.repeat(64),
          deps: [model],
          params: {},
          outs: [metricsRef],
          metrics: o.metrics,
        },
        gate: {
          code: 'c'.repeat(64),
          deps: [metricsRef],
          params: {},
          outs: [],
          metrics: { passed: o.gatePassed ?? 1 },
        },
      },
    };
    await writeFile(path.join(dir, 'artifacts.lock.yaml'), serializeLockfile(lockfile));
    if (o.push ?? true) {
      const remote = await openRemote(remoteDir);
      const oids = [
        ...(await artifactObjects(repo, model)),
        ...(metricsRef.dir ? await artifactObjects(repo, metricsRef) : [metricsRef.hash]),
      ];
      await pushObjects(repo, remote, oids);
    }
    await git.add('artifacts.lock.yaml');
    await git.commit(o.message ?? `model ${o.content}`);
    const commit = (await git.revparse(['HEAD'])).trim();
    return { commit, model };
  }

  return {
    dir,
    repo,
    git,
    remoteDir,
    commitModel,
    cleanup: async () => {
      await rm(dir, { recursive: true, force: true });
      await rm(remoteDir, { recursive: true, force: true });
    },
  };
}

/** Metrics that pass every environment's gate in promotion/*.yaml. */
export const GOOD = { accuracy: 0.8, f1_macro: 0.8, mcc: 0.75 };
