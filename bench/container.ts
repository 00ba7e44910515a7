/**
 * container: the serving image laid out from the Dockerfile without Docker (test/support/image.ts:
 * its COPY lines, the same `npm ci` flags, the build stage's compiled CLI), then:
 *
 * - `node_modules_bytes` / `node_modules_mb`: the installed size of the image's node_modules, and
 *   `node_modules_vs_dev`: against this checkout's full development install.
 * - `cold_start_seconds` (target < 5): the image's CMD spawned with the Vertex AI environment
 *   (model directory from AIP_STORAGE_URI on the fake Cloud Storage server) until the first 200
 *   from the health route; median of RUNS starts. `cold_start_vs_node`: against the time a bare
 *   `node` takes to start an HTTP server and answer its first request, in the same run.
 * - `install_seconds`: the runtime stage's `npm ci` (from the npm cache).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { FakeGcs } from '../test/support/fake-gcs.ts';
import { folderBytes, layOutImage } from '../test/support/image.ts';
import { makeAudioModel } from '../test/support/audio-model.ts';
import { makeTinyCorpus } from '../test/support/corpus.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const RUNS = 5;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Spawns `args`, polls `url` until it answers 200, stops the process; returns the seconds to healthy. */
async function timeToHealthy(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  url: string,
): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  const gone = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  try {
    for (;;) {
      if (exited) throw new Error(`${args.join(' ')} exited before it was healthy: ${stderr.slice(-1000)}`);
      if (performance.now() - started > 60_000) throw new Error(`${args.join(' ')}: not healthy after 60 s`);
      const ok = await fetch(url).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return (performance.now() - started) / 1000;
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    child.kill('SIGTERM');
    await gone;
  }
}

export default async function container(): Promise<Record<string, number | string>> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-bench-container-'));
  const gcs = await FakeGcs.start();
  const image = layOutImage();
  try {
    const clips = await makeTinyCorpus(path.join(work, 'corpus'), { speakers: 2 });
    const modelDir = path.join(work, 'model');
    await makeAudioModel(modelDir, clips, { epochs: 5 });
    for (const f of fs.readdirSync(modelDir, { recursive: true, withFileTypes: true })) {
      if (!f.isFile()) continue;
      const abs = path.join(f.parentPath, f.name);
      gcs.putObject(
        'models',
        `m/${path.relative(modelDir, abs).split(path.sep).join('/')}`,
        fs.readFileSync(abs),
      );
    }
    const starts: number[] = [];
    const nodes: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const port = await freePort();
      const env: NodeJS.ProcessEnv = {
        PATH: process.env.PATH,
        HOME: image.app,
        TMPDIR: os.tmpdir(),
        ...image.env,
        AIP_HTTP_PORT: String(port),
        AIP_STORAGE_URI: 'gs://models/m',
        AIP_DEPLOYED_MODEL_ID: '1',
        STORAGE_EMULATOR_HOST: gcs.url,
      };
      const health = `http://127.0.0.1:${port}${image.env.AIP_HEALTH_ROUTE ?? '/health'}`;
      starts.push(await timeToHealthy(image.cmd.slice(1), image.app, env, health));
      const bare = `require('node:http').createServer((q, s) => s.end('ok')).listen(${port}, '127.0.0.1')`;
      nodes.push(await timeToHealthy(['-e', bare], image.app, env, `http://127.0.0.1:${port}/`));
    }
    const bytes = folderBytes(path.join(image.app, 'node_modules'));
    const devBytes = folderBytes(path.join(ROOT, 'node_modules'));
    const cold = median(starts);
    const node = median(nodes);
    return {
      cold_start_seconds: Number(cold.toFixed(2)),
      bare_node_http_seconds: Number(node.toFixed(3)),
      cold_start_vs_node: Number((cold / node).toFixed(1)),
      node_modules_bytes: bytes,
      node_modules_mb: Number((bytes / 2 ** 20).toFixed(1)),
      node_modules_vs_dev: Number((bytes / devBytes).toFixed(2)),
      install_seconds: Number(image.installSeconds.toFixed(1)),
      runs: RUNS,
      load_average_1m: Number(os.loadavg()[0]!.toFixed(1)),
    };
  } finally {
    image.cleanup();
    await gcs.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}
