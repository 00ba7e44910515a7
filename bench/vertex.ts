/**
 * Featurize as a Vertex AI CustomJob against the fakes (test/support: fake GCS, fake Vertex AI
 * JobService running each replica as a `lockstep job run` process here) versus featurize
 * computed locally, on the demo source shrunk to 4 speakers x 1 word (the full demo corpus takes
 * minutes per run here, and there are 20 runs). A template checkout has the
 * upstream stages locked; every run copies it (not timed) and times one spawned
 * `lockstep repro featurize` as a user runs it (its compiled CLI fresh, as after `npm ci`),
 * against a fresh remote prefix so no earlier job's outputs are reused. Local, 1, 2 and 4 replicas alternate round by round.
 *
 * - vertex_r<N>_vs_local: median job-path seconds with N replicas / median local seconds
 *   (target <= 1.5 at one replica).
 * - vertex_r1_fixed_seconds: median r1 minus median local, the job path's own cost (client
 *   start-up, pushing inputs, the replica's `lockstep job run` process, polling, pulling).
 * - hashes_equal: every run locked the same out/features hash as the local runs.
 *
 * Polling runs with its defaults (250 ms for 10 s, then backing off to 10 s), as a user gets it: the time
 * between a job's end and repro seeing it is part of the figure. The fake adds no machine
 * provisioning or image pull (test/support/fake-vertex-jobs.ts), so the figure is our own cost.
 * BENCH_VERTEX_SPEAKERS / BENCH_VERTEX_WORDS size the corpus, BENCH_VERTEX_REPLICAS (e.g. `1`)
 * picks the replica counts, BENCH_VERTEX_RUNS the rounds.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseLockfile } from '../lib/lockfile.ts';
import { FakeGcs } from '../test/support/fake-gcs.ts';
import { FakeVertex } from '../test/support/fake-vertex.ts';
import { FakeJobs } from '../test/support/fake-vertex-jobs.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const IMAGE = 'us-docker.pkg.dev/p/r/lockstep@sha256:' + 'b'.repeat(64);
const RUNS = Number(process.env.BENCH_VERTEX_RUNS ?? 5);
const REPLICAS = (process.env.BENCH_VERTEX_REPLICAS ?? '1,2,4').split(',').map(Number);
const SPEAKERS = Number(process.env.BENCH_VERTEX_SPEAKERS ?? 4);
const WORDS = Number(process.env.BENCH_VERTEX_WORDS ?? 1);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function lockstep(dir: string, args: string[], env: NodeJS.ProcessEnv): void {
  const res = spawnSync(process.execPath, [path.join(dir, 'bin/lockstep.mjs'), ...args], {
    cwd: dir,
    encoding: 'utf8',
    env,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.status !== 0) throw new Error(`lockstep ${args.join(' ')} failed: ${res.stderr.slice(-2000)}`);
}

/** Runs `lockstep repro featurize` in the background-friendly async form (the fakes share this loop). */
async function timedRepro(dir: string, env: NodeJS.ProcessEnv): Promise<number> {
  const { spawn } = await import('node:child_process');
  const t0 = performance.now();
  const child = spawn(process.execPath, [path.join(dir, 'bin/lockstep.mjs'), 'repro', 'featurize'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`repro featurize failed in ${dir}: ${err.slice(-2000)}`);
  return (performance.now() - t0) / 1000;
}

function featuresHash(dir: string): string {
  const lock = parseLockfile(fs.readFileSync(path.join(dir, 'artifacts.lock.yaml'), 'utf8'));
  return lock.stages.featurize!.outs.map((o) => o.hash).join(',');
}

export default async function (): Promise<Record<string, number | string | boolean>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-vertex-'));
  const gcs = await FakeGcs.start();
  const vertex = await new FakeVertex().start();
  const jobs = new FakeJobs(vertex, { images: { [IMAGE]: ROOT } });
  const base = {
    ...process.env,
    CI: 'true',
    LOCKSTEP_GCS_ENDPOINT: gcs.url,
    LOCKSTEP_VERTEX_ENDPOINT: `http://127.0.0.1:${vertex.port}`,
    LOCKSTEP_VERTEX_RETRY_MS: '20',
    LOCKSTEP_VERTEX_PROJECT: 'p',
    LOCKSTEP_VERTEX_REGION: 'us-central1',
    LOCKSTEP_IMAGE: IMAGE,
  };
  // The replicas run in this checkout (the "image"): they see the fakes through the env too.
  Object.assign(process.env, { LOCKSTEP_GCS_ENDPOINT: gcs.url });
  const load = [os.loadavg()[0]!];
  try {
    const template = path.join(work, 'template');
    execFileSync('git', ['clone', '-q', ROOT, template]);
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(template, 'node_modules'), 'dir');
    // The tiny corpus of the compute tests (4 speakers, 1 word each): the demo corpus' 350
    // clips take minutes per run on a loaded 2-core machine, times 20 runs.
    const params = fs.readFileSync(path.join(template, 'params.yaml'), 'utf8');
    fs.writeFileSync(
      path.join(template, 'params.yaml'),
      params
        .replace(/^ {2}speakers: \d+$/m, `  speakers: ${SPEAKERS}`)
        .replace(/^ {2}words: \d+$/m, `  words: ${WORDS}`),
    );
    // Upstream of featurize, locked once (not timed).
    lockstep(template, ['repro', 'validate', '--compute', 'local'], base);
    // The image is built before any job runs (as docker build does): a stale compiled CLI there
    // would be recompiled by the first replicas of the first job, inside the timed figure.
    lockstep(ROOT, ['--help'], base);
    const seconds: Record<string, number[]> = {
      local: [],
      ...Object.fromEntries(REPLICAS.map((r) => [`r${r}`, []])),
    };
    const hashes = new Set<string>();
    let n = 0;
    for (let round = 0; round < RUNS; round++) {
      for (const kind of ['local', ...REPLICAS.map((r) => `r${r}`)]) {
        const dir = path.join(work, `run-${n++}`);
        fs.cpSync(template, dir, { recursive: true, verbatimSymlinks: true });
        fs.mkdirSync(path.join(dir, '.lockstep'), { recursive: true });
        const replicas = Number(kind.slice(1));
        const config =
          kind === 'local'
            ? 'compute:\n  stages: {}\n'
            : `compute:\n  stages:\n    featurize: { backend: vertex${replicas > 1 ? `, replicas: ${replicas}` : ''} }\n`;
        fs.writeFileSync(path.join(dir, '.lockstep/config.yaml'), config);
        // A copy has new mtimes, so its compiled CLI is stale: compile it untimed, as `npm ci`
        // does in a user's checkout, so neither side's figure holds a compile.
        lockstep(dir, ['--help'], base);
        const env = { ...base, LOCKSTEP_REMOTE: `gs://bench/run-${n}` };
        try {
          seconds[kind]!.push(await timedRepro(dir, env));
        } catch (err) {
          throw new Error(
            `${(err as Error).message}\nreplica output:\n${jobs.output.slice(-40).join('\n')}`,
            {
              cause: err,
            },
          );
        }
        hashes.add(featuresHash(dir));
        fs.rmSync(dir, { recursive: true, force: true });
        load.push(os.loadavg()[0]!);
      }
    }
    await jobs.idle();
    const local = median(seconds.local!);
    const figures: Record<string, number | string | boolean> = {
      local_seconds: Number(local.toFixed(2)),
    };
    for (const r of REPLICAS) {
      const m = median(seconds[`r${r}`]!);
      figures[`vertex_r${r}_seconds`] = Number(m.toFixed(2));
      figures[`vertex_r${r}_vs_local`] = Number((m / local).toFixed(2));
    }
    if (seconds.r1?.length) figures.vertex_r1_fixed_seconds = Number((median(seconds.r1) - local).toFixed(2));
    figures.hashes_equal = hashes.size === 1;
    figures.jobs_created = jobs.count('create');
    figures.runs_each = RUNS;
    figures.corpus = `demo source, ${SPEAKERS} speakers x ${WORDS} word(s)`;
    figures.poll = 'default (250 ms for 10 s, then backing off to 10 s)';
    figures.load_average_1m = Number(median(load).toFixed(1));
    return figures;
  } finally {
    await jobs.idle();
    await vertex.close();
    await gcs.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
