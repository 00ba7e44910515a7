/**
 * Shared set-up for compute tests: the real demo pipeline (tiny params) in temp git repos with
 * lockstep's code, a fake GCS remote, and a fake Vertex AI whose JobService runs each replica as a
 * `node bin/lockstep.mjs job run ...` process in this checkout (the "image").
 */
import { cp, mkdtemp, rm, symlink, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { simpleGit } from 'simple-git';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { FakeGcs } from '../support/fake-gcs.ts';
import { FakeVertex } from '../support/fake-vertex.ts';
import { FakeJobs, type FakeJobsOptions } from '../support/fake-vertex-jobs.ts';

export const PROJECT = path.resolve(import.meta.dirname, '../..');
export const IMAGE = 'us-docker.pkg.dev/p/r/lockstep@sha256:' + 'a'.repeat(64);

export const PARAMS = `data:
  source: demo
  speakers: 4
  words: 1
  seed: 7
train:
  epochs: 3
  patience: 2
gate:
  baseline_env: dev
  thresholds:
    - { metric: f1_macro, direction: higher, min: 0, tolerance: 1 }
`;

export const COMPUTE = `compute:
  stages:
    featurize: { backend: vertex, replicas: 3 }
    train: { backend: vertex, machine_type: n1-standard-8 }
`;

/** A temp git repo on branch dev with lockstep's code, tiny params and `config` as .lockstep/config.yaml. */
export async function createComputeRepo(config = COMPUTE): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'lockstep-compute-'));
  const git = simpleGit(dir);
  await git.raw(['init', '-q', '-b', 'dev']);
  await git.addConfig('user.email', 'ml@example.com');
  await git.addConfig('user.name', 'ML Engineer');
  await git.addConfig('commit.gpgsign', 'false');
  for (const d of ['bin', 'lib', 'stages', 'promotion'])
    await cp(path.join(PROJECT, d), path.join(dir, d), { recursive: true });
  await cp(path.join(PROJECT, 'package.json'), path.join(dir, 'package.json'));
  await symlink(path.join(PROJECT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  // Where stages compute is local state here (.lockstep/* is ignored), so verify's worktree
  // reproduces everything locally.
  await writeFile(path.join(dir, '.gitignore'), 'node_modules\n/.lockstep/*\n/out/\n');
  await writeFile(path.join(dir, 'params.yaml'), PARAMS);
  await writeFile(
    path.join(dir, 'promotion/dev.yaml'),
    'branch: dev\nendpoint:\n  kind: local\ngate:\n  thresholds:\n    - { metric: f1_macro, direction: higher, min: 0, tolerance: 1 }\n',
  );
  await mkdir(path.join(dir, '.lockstep'), { recursive: true });
  await writeFile(path.join(dir, '.lockstep/config.yaml'), config);
  await git.add('.');
  await git.commit('lockstep with tiny demo params');
  return dir;
}

export interface ComputeWorld {
  gcs: FakeGcs;
  vertex: FakeVertex;
  jobs: FakeJobs;
  env: Record<string, string>;
  close(): Promise<void>;
}

/** Starts the fakes and sets the environment a user (or a workflow) sets for Vertex AI compute. */
export async function startWorld(
  bucket = 'bkt',
  options: Partial<FakeJobsOptions> = {},
): Promise<ComputeWorld> {
  const gcs = await FakeGcs.start();
  const vertex = await new FakeVertex().start();
  const jobs = new FakeJobs(vertex, { images: { [IMAGE]: PROJECT }, ...options });
  const env = {
    LOCKSTEP_GCS_ENDPOINT: gcs.url,
    LOCKSTEP_VERTEX_ENDPOINT: `http://127.0.0.1:${vertex.port}`,
    LOCKSTEP_VERTEX_POLL_MS: '100',
    LOCKSTEP_VERTEX_RETRY_MS: '20',
    LOCKSTEP_REMOTE: `gs://${bucket}/store`,
    LOCKSTEP_VERTEX_PROJECT: 'p',
    LOCKSTEP_VERTEX_REGION: 'us-central1',
    LOCKSTEP_IMAGE: IMAGE,
  };
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  return {
    gcs,
    vertex,
    jobs,
    env,
    async close() {
      await jobs.idle();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      await vertex.close();
      await gcs.close();
    },
  };
}

/** Runs the CLI in this process in `dir`. */
export async function cli(
  dir: string,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const o = memoryOutput();
  const code = await main(['-C', dir, ...args], o);
  return { code, out: o.stdout.join('\n'), err: o.stderr.join('\n') };
}

/** Runs the CLI as a user does (`node bin/lockstep.mjs`), in its own process. */
export function spawnCli(
  dir: string,
  args: string[],
  env: Record<string, string> = {},
): {
  child: ChildProcess;
  done: Promise<{ code: number | null; err: string }>;
  /** Everything printed so far (stdout and stderr). */
  output: () => string;
} {
  const child = spawn(process.execPath, [path.join(PROJECT, 'bin/lockstep.mjs'), '-C', dir, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.on('data', (c: Buffer) => (err += c.toString()));
  const done = new Promise<{ code: number | null; err: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, err })),
  );
  return { child, done, output: () => err };
}

export async function removeRepo(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}
