/**
 * Serving benchmark: `lockstep serve` (a child process, as in production) answering Vertex AI
 * style requests with a 3 s 16 kHz WAV clip, features computed server-side with the default
 * featurize params and the default MLP, loaded through the local endpoint by hash. Load comes
 * from autocannon in this process.
 *
 * - max_rps: 2xx responses per second with 16 connections (closed loop).
 * - p50_ms_at_150rps / p99_ms_at_150rps: latency at a constant 150 requests per second (open
 *   loop, paced here; see `paced`), p99_vs_target_at_150rps = p99 / 25 ms (lower is better).
 * - errors: non-2xx + socket errors + timeouts over both runs.
 * - max_rps_vs_target: max_rps / 300 (the target on this machine).
 * - predict_vs_health_rps: max_rps / the same server's GET /health throughput measured in the
 *   same run (the HTTP ceiling: how much of it the prediction path leaves).
 * Env: SERVE_BENCH_WORKERS (server processes, default 2), SERVE_BENCH_SECONDS (default 6).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createRequire } from 'node:module';
import { decodeWav, encodeWav, downmix } from '../lib/audio/wav.ts';
import { repoAt } from '../lib/repo.ts';
import { commitArtifact } from '../lib/store/artifacts.ts';
import { LocalEndpoint } from '../lib/endpoints/local.ts';
import { paramsSchema } from '../lib/params-schema.ts';
import { makeTinyCorpus } from '../test/support/corpus.ts';
import { makeAudioModel } from '../test/support/audio-model.ts';

const TARGET_RPS = 300;

/** The part of autocannon's API (untyped package) this benchmark uses. */
interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  connections: number;
  duration: number;
  overallRate?: number;
}
interface LoadResult {
  requests: { total: number; average: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (
  opts: LoadOptions,
  cb: (err: Error | null, result: LoadResult) => void,
) => unknown;

/** A 3 s clip: a corpus utterance repeated to fill 3 s. */
function threeSecondClip(file: string): Buffer {
  const audio = decodeWav(fs.readFileSync(file), file);
  const mono = downmix(audio.channels);
  const n = 3 * audio.sampleRate;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mono[i % mono.length];
  return encodeWav([out], audio.sampleRate);
}

/**
 * Open-loop load at a constant arrival rate: request i is sent at t0 + i/rps over keep-alive
 * connections, and its latency counts from that scheduled time, so queueing is included
 * (no coordinated omission). autocannon's own rate limit releases each second's budget in one
 * burst at the start of the second, which measures burst queueing rather than latency at a rate.
 */
async function paced(
  url: string,
  body: string,
  rps: number,
  seconds: number,
): Promise<{ latencies: number[]; errors: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rps * seconds);
  const latencies: number[] = [];
  let errors = 0;
  const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  const send = (scheduled: number) =>
    new Promise<void>((resolve) => {
      const req = http.request(url, { method: 'POST', agent, headers }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) errors++;
          latencies.push(performance.now() - scheduled);
          resolve();
        });
      });
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  const pending: Promise<void>[] = [];
  const t0 = performance.now() + 20;
  for (let i = 0; i < total; i++) {
    const at = t0 + (i * 1000) / rps;
    const wait = at - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    pending.push(send(at));
  }
  await Promise.all(pending);
  agent.destroy();
  return { latencies: latencies.sort((a, b) => a - b), errors };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] : 0;
}

function run(opts: LoadOptions): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

export default async function serveBench(): Promise<Record<string, number | string>> {
  const workers = Number(process.env.SERVE_BENCH_WORKERS ?? 2);
  const seconds = Number(process.env.SERVE_BENCH_SECONDS ?? 6);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-serve-bench-'));
  fs.mkdirSync(path.join(root, 'promotion'));
  fs.writeFileSync(path.join(root, 'promotion', 'dev.yaml'), 'branch: dev\nendpoint: { kind: local }\n');
  fs.writeFileSync(path.join(root, 'params.yaml'), '{}\n');
  const repo = repoAt(root);
  const files = await makeTinyCorpus(path.join(root, 'corpus'), { speakers: 2 });
  const params = paramsSchema.parse({});
  await makeAudioModel(path.join(root, 'out', 'model'), files, {
    epochs: 10,
    featurize: params.featurize,
    units: params.train.units,
    seed: 1,
    cardParams: params.train,
    dataHash: 'bench',
  });
  const ref = await commitArtifact(repo, 'out/model');
  await new LocalEndpoint(repo, 'dev').deploy(ref, 100);
  const body = JSON.stringify({ instances: [{ audio: threeSecondClip(files[0]).toString('base64') }] });

  const bin = path.resolve(import.meta.dirname, '..', 'bin', 'lockstep.mjs');
  const child = spawn(
    process.execPath,
    [bin, '-C', root, 'serve', '--env', 'dev', '--workers', String(workers), '--max-in-flight', '256'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let text = '';
      child.stdout!.on('data', (d) => {
        text += d;
        const m = /serving dev on (http:\/\/[^ ]+)/.exec(text);
        if (m) resolve(m[1]);
      });
      child.on('exit', (code) => reject(new Error(`lockstep serve exited with ${code}`)));
      setTimeout(() => reject(new Error('lockstep serve did not start within 120 s')), 120_000);
    });
    const predict = {
      url: url + '/predict',
      method: 'POST' as const,
      headers: { 'content-type': 'application/json' },
      body,
    };
    const check = await fetch(predict.url, { method: 'POST', headers: predict.headers, body });
    if (check.status !== 200) throw new Error(`predict answered ${check.status}: ${await check.text()}`);

    await run({ ...predict, connections: 8, duration: 2 }); // warm-up (JIT, caches)
    const health = await run({ url: url + '/health', connections: 16, duration: Math.max(2, seconds / 2) });
    const max = await run({ ...predict, connections: 16, duration: seconds });
    const steady = await paced(predict.url, body, 150, seconds);
    const errs = (r: LoadResult) => r.non2xx + r.errors + r.timeouts;
    const maxRps = (max.requests.total - errs(max)) / seconds;
    const round1 = (x: number) => Math.round(x * 10) / 10;
    return {
      max_rps: Math.round(maxRps),
      p50_ms_at_150rps: round1(percentile(steady.latencies, 50)),
      p99_ms_at_150rps: round1(percentile(steady.latencies, 99)),
      requests_at_150rps: steady.latencies.length,
      errors: errs(max) + steady.errors,
      max_rps_vs_target: Math.round((maxRps / TARGET_RPS) * 100) / 100,
      p99_vs_target_at_150rps: Math.round((percentile(steady.latencies, 99) / 25) * 100) / 100,
      health_rps: Math.round(health.requests.average),
      predict_vs_health_rps: Math.round((maxRps / health.requests.average) * 1000) / 1000,
      server_workers: workers,
      clip: '3 s, 16 kHz, 16-bit mono WAV, base64 in JSON',
      load_average_1m: Math.round(os.loadavg()[0] * 10) / 10,
    };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    // The server drains for up to 10 s; past 20 s, kill it rather than leave it running.
    const stopped = await Promise.race([
      exited.then(() => true),
      new Promise((r) => setTimeout(r, 20_000, false)),
    ]);
    if (!stopped) child.kill('SIGKILL');
    fs.rmSync(root, { recursive: true, force: true });
  }
}
