/**
 * The serving image, without Docker: test/support/image.ts lays out the Dockerfile's final stage
 * (its COPY lines, its `npm ci` flags, the build stage's compiled output) in a temp folder; this
 * test starts the image's CMD there with the Vertex AI environment, the model directory served
 * by the fake Cloud Storage server, and checks health (also through the image's HEALTHCHECK),
 * one prediction of a demo clip, and SIGTERM: exit 0 with the prediction log shipped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FakeGcs } from '../support/fake-gcs.ts';
import { layOutImage, type Image } from '../support/image.ts';
import { makeAudioModel } from '../support/audio-model.ts';
import { makeTinyCorpus } from '../support/corpus.ts';

const run = promisify(execFile);
let image: Image;
let gcs: FakeGcs;
let work: string;
let clips: string[];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

/** Every file under `dir` (relative, POSIX), not descending into node_modules. */
function ownFiles(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.name === 'node_modules') return [];
    return e.isDirectory() ? ownFiles(dir, r) : [r];
  });
}

/**
 * Spawn options that run as the image's USER: everything the image holds belongs to root, and
 * only what the Dockerfile chowns belongs to that user. Running as root here (CI does), the CMD
 * runs as `nobody` standing for it, with the chowned paths handed over; otherwise as this user.
 */
function imageUser(img: Image): { uid?: number; gid?: number } {
  if (!img.user || process.getuid?.() !== 0) return {};
  const uid = 65534;
  const gid = 65534;
  // mkdtemp folders are private to root: open the path down to the app for reading.
  for (let dir = img.app; dir.startsWith(os.tmpdir() + path.sep); dir = path.dirname(dir))
    fs.chmodSync(dir, 0o755);
  for (const p of img.owned) {
    fs.chownSync(p, uid, gid);
    for (const f of fs.readdirSync(p, { recursive: true }) as string[])
      fs.chownSync(path.join(p, f), uid, gid);
  }
  return { uid, gid };
}

beforeAll(async () => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-image-model-'));
  clips = await makeTinyCorpus(path.join(work, 'corpus'), { speakers: 2 });
  await makeAudioModel(path.join(work, 'model'), clips, { epochs: 5 });
  gcs = await FakeGcs.start();
  for (const f of ownFiles(path.join(work, 'model')))
    gcs.putObject('models', `demo/model/${f}`, fs.readFileSync(path.join(work, 'model', f)));
  image = layOutImage();
}, 300_000);

afterAll(async () => {
  image?.cleanup();
  await gcs?.close();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('serving image', () => {
  it('image holds production dependencies and compiled JavaScript only, with the tfjs wasm binaries', async () => {
    const own = ownFiles(image.app);
    expect(own.filter((f) => /\.[cm]?tsx?$/.test(f))).toEqual([]);
    expect(own).toContain('bin/lockstep.mjs');
    expect(own.some((f) => /^dist\/cli\/b-[^/]+\/main\.mjs$/.test(f))).toBe(true);
    const modules = path.join(image.app, 'node_modules');
    for (const dev of ['tsx', 'esbuild', 'typescript', 'vitest', '@tensorflow/tfjs-node'])
      expect(fs.existsSync(path.join(modules, dev)), dev).toBe(false);
    const wasmDir = path.join(modules, '@tensorflow/tfjs-backend-wasm/dist');
    expect(fs.readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))).toEqual(
      expect.arrayContaining(['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm']),
    );
    // The wasm backend initialises from the image's own node_modules (not the cpu fallback).
    const probe = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import * as tf from '@tensorflow/tfjs';
         import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
         setWasmPaths(${JSON.stringify(wasmDir + '/')});
         console.log(await tf.setBackend('wasm'), tf.getBackend());`,
      ],
      { cwd: image.app },
    );
    expect(probe.stdout.trim()).toBe('true wasm');
  });

  it('image CMD serves the Vertex AI contract from AIP_STORAGE_URI, answers its HEALTHCHECK and ships logs on SIGTERM', async () => {
    const port = await freePort();
    const predictRoute = '/v1/endpoints/77/deployedModels/9:predict';
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: image.app,
      TMPDIR: os.tmpdir(),
      ...image.env,
      AIP_HTTP_PORT: String(port),
      AIP_HEALTH_ROUTE: '/healthz',
      AIP_PREDICT_ROUTE: predictRoute,
      AIP_STORAGE_URI: 'gs://models/demo/model',
      AIP_DEPLOYED_MODEL_ID: '9',
      AIP_ENDPOINT_ID: '77',
      LOCKSTEP_LOG_URI: 'gs://logs/vertex',
      STORAGE_EMULATOR_HOST: gcs.url,
    };
    expect(image.cmd[0]).toBe('node');
    const child = spawn(process.execPath, image.cmd.slice(1), {
      cwd: image.app,
      env,
      ...imageUser(image),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('serving') && resolve());
        void exited.then((code) => reject(new Error(`image CMD exited ${code}: ${stderr}`)));
        setTimeout(() => reject(new Error(`image CMD did not start: ${stderr}`)), 60_000);
      });
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(base + '/healthz')).status).toBe(200);
      expect(image.healthcheck?.[0]).toBe('node');
      const health = await run(process.execPath, image.healthcheck!.slice(1), { cwd: image.app, env });
      expect(health.stderr).toBe('');

      const res = await fetch(base + predictRoute, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [{ audio: fs.readFileSync(clips[0]!).toString('base64') }] }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { deployedModelId: string; predictions: { label: string }[] };
      expect(body.deployedModelId).toBe('9');
      expect(body.predictions).toHaveLength(1);
      expect(typeof body.predictions[0]!.label).toBe('string');

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(gcs.names('logs')).toEqual([expect.stringMatching(/^vertex\/9-[^/]+\/predictions-.*\.jsonl$/)]);
      expect(stderr).not.toMatch(/error/i);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);

  it('image CMD without AIP_STORAGE_URI, or with a model directory that is not one, fails in one line', async () => {
    const port = await freePort();
    const base: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: work,
      ...image.env,
      AIP_HTTP_PORT: String(port),
    };
    const failure = async (env: NodeJS.ProcessEnv) => {
      const e = (await run(process.execPath, image.cmd.slice(1), {
        cwd: image.app,
        env,
        ...imageUser(image),
        timeout: 60_000,
      }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => err,
      )) as { code: number; stderr: string };
      return { code: e.code, lines: e.stderr.trim().split('\n') };
    };
    const unset = { ...base };
    delete unset.AIP_STORAGE_URI;
    expect(await failure(unset)).toEqual({
      code: 2,
      lines: [expect.stringMatching(/^lockstep: AIP_STORAGE_URI: not set\./)],
    });
    fs.mkdirSync(path.join(work, 'not-a-model'), { recursive: true });
    for (const uri of [path.join(work, 'not-a-model'), path.join(work, 'missing'), 'gs://']) {
      const res = await failure({ ...base, AIP_STORAGE_URI: uri });
      expect(res.code, uri).toBe(1);
      expect(res.lines, uri).toEqual([expect.stringMatching(/^lockstep: /)]);
    }
  }, 120_000);

  it('image HEALTHCHECK fails when nothing answers', async () => {
    const port = await freePort();
    const env = { PATH: process.env.PATH, ...image.env, AIP_HTTP_PORT: String(port) };
    await expect(
      run(process.execPath, image.healthcheck!.slice(1), { cwd: image.app, env }),
    ).rejects.toMatchObject({
      code: 1,
    });
  });
});
